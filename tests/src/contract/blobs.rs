//! The `Blobs` contract: bytes back exactly as stored, replaced on rewrite, `None` when
//! absent, and keys that could escape a directory refused.

use cobro::ports::{BlobError, Blobs};

pub async fn run(b: &dyn Blobs) {
    assert_eq!(
        b.get("webhooks/whatsapp/none.json").await.unwrap(),
        None,
        "get: absent is None"
    );
    // Bytes exactly, whatever they are: a body with Meta's escapes, binary media, 3 MB.
    let body = br#"{"a":"caf\u00e9 \/ x"}"#.to_vec();
    b.put(
        "webhooks/whatsapp/2026-03-16/abc.json",
        body.clone(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(
        b.get("webhooks/whatsapp/2026-03-16/abc.json")
            .await
            .unwrap(),
        Some(body),
        "put/get: the same bytes"
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024).collect();
    b.put("media/t/image/m1", binary.clone(), "image/jpeg")
        .await
        .unwrap();
    assert_eq!(
        b.get("media/t/image/m1").await.unwrap().as_deref(),
        Some(binary.as_slice()),
        "put/get: 3 MB of binary"
    );
    b.put("media/t/image/m1", b"second".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert_eq!(
        b.get("media/t/image/m1").await.unwrap().as_deref(),
        Some(&b"second"[..]),
        "put: replaces"
    );
    for bad in ["", "/abs", "a/../b", "a//b", "a/./b", "a b", "a\\b"] {
        assert!(
            matches!(
                b.put(bad, vec![1], "x").await,
                Err(BlobError::InvalidKey(_))
            ),
            "key `{bad}` is refused"
        );
        assert!(
            matches!(b.get(bad).await, Err(BlobError::InvalidKey(_))),
            "key `{bad}` is refused on get"
        );
    }
}
