//! `cargo run --release -p cobro-local`: the whole of cobro on 127.0.0.1, no AWS account.

use cobro_local::{LocalStack, Settings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The same JSON lines as on Lambda, filtered by `COBRO_LOG`.
    cobro::logs::init();
    let settings = Settings::from_env()?;
    let port = settings.port;
    let data = settings.data_dir.display().to_string();
    let stack = LocalStack::open(settings).await?;
    stack.spawn_background();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tracing::info!("cobro local stack on http://{addr} (data in {data})");
    println!("cobro is running on http://{addr}");
    println!("  sandbox (the debtors' phones): http://{addr}/sandbox");
    println!("  CRM API:                       http://{addr}/v1/  (Authorization: Bearer $COBRO_DEMO_API_KEY)");
    println!("  WhatsApp webhook:              http://{addr}/webhooks/whatsapp");
    println!("  local controls:                http://{addr}/_local/status");
    axum::serve(listener, stack.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
