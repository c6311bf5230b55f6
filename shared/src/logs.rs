//! Logs: JSON lines through `tracing`, one span per invocation carrying `function`,
//! `request_id`, `stage` and, once known, `tenant`. What identifies a debtor never goes in a
//! field as it is: phone numbers through `Phone::masked`, e-mail addresses through
//! `mask_email`, and message texts not at all.

use tracing::field::Empty;
use tracing::Span;

use crate::domain::TenantId;

/// The span of one invocation (a Lambda request, an HTTP request, one queue message locally).
pub fn invocation(function: &str, request_id: &str) -> Span {
    let span = tracing::info_span!(
        "invocation",
        function,
        request_id,
        stage = Empty,
        tenant = Empty
    );
    if let Some(stage) = stage() {
        span.record("stage", stage);
    }
    span
}

/// The span of one queue message within a batch: its id and, once known, its tenant.
pub fn message(message_id: &str) -> Span {
    tracing::info_span!("message", message_id, tenant = Empty)
}

/// The span of the work done for one tenant within an invocation that serves several.
pub fn for_tenant(tenant: &TenantId) -> Span {
    tracing::info_span!("for_tenant", tenant = tenant.as_str())
}

/// Names the tenant on the current span (an invocation or message span), once it is known.
pub fn record_tenant(tenant: &TenantId) {
    Span::current().record("tenant", tenant.as_str());
}

/// Text from elsewhere (a provider's error message, a parse error) made safe for a log field:
/// e-mail addresses masked as `mask_email` does, runs of 8 or more digits (phone numbers in
/// any format but spaced ones) as `Phone::masked` does. Providers do quote recipients in
/// errors (SES names the address it refused).
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        let (core, tail) = word.split_at(word.trim_end().len());
        if core.contains('@') {
            // Keep quotes and punctuation around the address.
            let start = core
                .find(|c: char| c.is_alphanumeric())
                .unwrap_or(core.len());
            let end = core
                .rfind(|c: char| c.is_alphanumeric())
                .map_or(start, |e| e + 1);
            out.push_str(&core[..start]);
            out.push_str(&crate::domain::mask_email(&core[start..end.max(start)]));
            out.push_str(&core[end.max(start)..]);
        } else {
            out.push_str(&mask_digit_runs(core));
        }
        out.push_str(tail);
    }
    out
}

fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 8 {
            out.push_str(&format!("{}…{}", &run[..2], &run[run.len() - 2..]));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `COBRO_STAGE`, read once.
fn stage() -> Option<&'static str> {
    static STAGE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    STAGE
        .get_or_init(|| std::env::var("COBRO_STAGE").ok().filter(|s| !s.is_empty()))
        .as_deref()
}

#[cfg(feature = "logs")]
pub use subscriber::{filter, init, json_layer};

#[cfg(feature = "logs")]
mod subscriber {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    /// The level filter from `COBRO_LOG`, else `RUST_LOG` (older templates set it), else
    /// `info`: a default level and levels per target, as `info,cobro_sender=debug`. A value
    /// that is empty or does not parse is skipped like an unset one.
    pub fn filter() -> Targets {
        filter_from(["COBRO_LOG", "RUST_LOG"].map(|name| std::env::var(name).ok()))
    }

    fn filter_from(values: [Option<String>; 2]) -> Targets {
        values
            .into_iter()
            .flatten()
            .filter(|value| !value.trim().is_empty())
            .find_map(|value| value.parse().ok())
            .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
    }

    /// JSON lines with every enclosing span's fields (`spans`), so `function`, `request_id`
    /// and `tenant` are on each line. No timestamps: Lambda adds its own.
    pub fn json_layer<S, W>(writer: W) -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .without_time()
            .with_target(false)
            .with_writer(writer)
    }

    /// The process's subscriber: JSON lines to stdout, filtered by `COBRO_LOG`. A second call
    /// (tests) changes nothing.
    pub fn init() {
        let _ = tracing_subscriber::registry()
            .with(json_layer(std::io::stdout).with_filter(filter()))
            .try_init();
    }

    #[cfg(test)]
    mod tests {
        use super::filter_from;
        use tracing::level_filters::LevelFilter;

        #[test]
        fn the_filter_takes_the_first_usable_setting_else_info() {
            let f = filter_from([Some("warn,cobro_sender=debug".into()), Some("error".into())]);
            assert_eq!(f.default_level(), Some(LevelFilter::WARN));
            assert!(f.would_enable("cobro_sender::send", &tracing::Level::DEBUG));
            assert!(!f.would_enable("cobro::repo", &tracing::Level::INFO));
            let f = filter_from([Some(" ".into()), Some("error".into())]);
            assert_eq!(f.default_level(), Some(LevelFilter::ERROR));
            let f = filter_from([Some("cobro=loud".into()), None]);
            assert_eq!(f.default_level(), Some(LevelFilter::INFO));
            assert_eq!(
                filter_from([None, None]).default_level(),
                Some(LevelFilter::INFO)
            );
        }
    }
}

#[cfg(feature = "http")]
pub use http_span::{http_invocation, traced, HttpSpan};

#[cfg(feature = "http")]
mod http_span {
    use axum::extract::{Request, State};
    use axum::middleware::Next;
    use axum::response::Response;
    use tracing::Instrument;

    /// How an HTTP function names its invocations: its name, and where the request id is
    /// (the Lambda context, a header); a request without one gets a fresh id.
    #[derive(Clone, Copy)]
    pub struct HttpSpan {
        pub function: fn(&Request) -> &'static str,
        pub request_id: fn(&Request) -> Option<String>,
    }

    /// `router` as one service under the invocation span: the span wraps the router once
    /// (`Router::layer` would wrap each of its routes, built at every cold start).
    pub fn traced(router: axum::Router, span: HttpSpan) -> axum::Router {
        axum::Router::new()
            .fallback_service(router)
            .layer(axum::middleware::from_fn_with_state(span, http_invocation))
    }

    /// Middleware (`axum::middleware::from_fn_with_state`): the request runs in its
    /// invocation span, and the metrics it counted are flushed after it.
    pub async fn http_invocation(
        State(cfg): State<HttpSpan>,
        request: Request,
        next: Next,
    ) -> Response {
        let id = (cfg.request_id)(&request).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let function = (cfg.function)(&request);
        let span = super::invocation(function, &id);
        let method = request.method().clone();
        let started = std::time::Instant::now();
        let response = next.run(request).instrument(span.clone()).await;
        span.in_scope(|| {
            // The route, not the path: a path can carry an id a person would recognise.
            tracing::info!(%method, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
            crate::metrics::flush(function);
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn scrub_masks_addresses_and_numbers_and_keeps_the_rest() {
        let raw = "Email address is not verified: <juana.perez@correo.example>, to +56987650123 (wa_id 56987650123) code 131026";
        let clean = scrub(raw);
        for secret in ["juana.perez@correo.example", "56987650123", "+56987650123"] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(clean.contains("<j***@c***.example>,"), "{clean}");
        assert!(clean.contains("+56…23"), "{clean}");
        assert!(clean.contains("code 131026"), "short codes stay: {clean}");
        assert_eq!(scrub("plain words"), "plain words");
    }
}
