//! Business metrics in CloudWatch Embedded Metric Format: handlers count into a per-process
//! buffer, and the function flushes it once per invocation as JSON lines on stdout, which
//! CloudWatch Logs turns into metrics with no API call. Namespace `Cobro`, dimension
//! `Function`, plus one optional dimension per metric (`ErrorClass`, `Rule`). Off Lambda
//! (the local stack, tests) a flush goes to the log at debug level instead.
//!
//! Spec: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::collections::BTreeMap;
use std::sync::Mutex;

pub const NAMESPACE: &str = "Cobro";
/// EMF's limits: metrics per directive, values per metric.
const MAX_METRICS: usize = 100;
const MAX_VALUES: usize = 100;

pub const MESSAGES_SENT: &str = "MessagesSent";
pub const MESSAGES_DELIVERED: &str = "MessagesDelivered";
pub const MESSAGES_READ: &str = "MessagesRead";
pub const MESSAGES_FAILED: &str = "MessagesFailed";
pub const DECISIONS: &str = "Decisions";
pub const PAYMENTS_APPLIED: &str = "PaymentsApplied";
pub const WEBHOOK_LATENCY: &str = "WebhookLatency";
pub const ACCOUNT_STOP: &str = "AccountStop";
/// WhatsApp templates Meta refused for a fault of the template (missing in the language,
/// wrong parameter count, paused, disabled …): the message went on another channel, if any.
pub const TEMPLATE_REFUSED: &str = "TemplateRefused";
/// Deliveries to a tenant's webhook that failed every attempt (kept for the tenant).
pub const WEBHOOK_DELIVERIES_FAILED: &str = "WebhookDeliveriesFailed";
/// Items a reminders tick failed to decide (or shards it failed to read), left for a later tick.
pub const DUE_ITEMS_FAILED: &str = "DueItemsFailed";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// The extra dimension a metric is split by, if any: (name, value).
type Extra = Option<(&'static str, String)>;

/// One document's worth: each metric's unit and values.
type Values = BTreeMap<&'static str, (Unit, Vec<f64>)>;

/// Values waiting for a flush, by extra dimension and metric.
#[derive(Debug, Default)]
pub struct Metrics {
    pending: Mutex<BTreeMap<Extra, Values>>,
}

impl Metrics {
    pub const fn new() -> Self {
        Self {
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    fn put(&self, name: &'static str, unit: Unit, value: f64, extra: Extra) {
        let mut pending = self.pending.lock().expect("not poisoned");
        let entry = pending
            .entry(extra)
            .or_default()
            .entry(name)
            .or_insert((unit, Vec::new()));
        // Counts add up; timings keep each value (CloudWatch computes the percentiles).
        match (unit, entry.1.first_mut()) {
            (Unit::Count, Some(total)) => *total += value,
            _ => entry.1.push(value),
        }
    }

    pub fn count(&self, name: &'static str, n: u64) {
        self.put(name, Unit::Count, n as f64, None);
    }

    pub fn count_by(&self, name: &'static str, dimension: &'static str, value: &str, n: u64) {
        self.put(
            name,
            Unit::Count,
            n as f64,
            Some((dimension, value.to_string())),
        );
    }

    pub fn millis(&self, name: &'static str, ms: f64) {
        self.put(name, Unit::Milliseconds, ms, None);
    }

    /// The EMF documents for everything pending, emptied: one per extra dimension (each
    /// directive's dimension set names exactly the members it has), split at EMF's limits.
    pub fn drain(&self, function: &str, timestamp_ms: i64) -> Vec<serde_json::Value> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("not poisoned"));
        let mut docs = Vec::new();
        for (extra, metrics) in pending {
            // Each value list in chunks of MAX_VALUES, each document at most MAX_METRICS.
            let mut items: Vec<(&str, Unit, &[f64])> = Vec::new();
            for (name, (unit, values)) in &metrics {
                for chunk in values.chunks(MAX_VALUES) {
                    items.push((name, *unit, chunk));
                }
            }
            // A metric split in chunks goes in separate documents (a name appears once each).
            let mut batches: Vec<Vec<(&str, Unit, &[f64])>> = Vec::new();
            for item in items {
                match batches
                    .iter_mut()
                    .find(|b| b.len() < MAX_METRICS && b.iter().all(|(n, ..)| *n != item.0))
                {
                    Some(b) => b.push(item),
                    None => batches.push(vec![item]),
                }
            }
            for batch in batches {
                let mut dimensions = vec!["Function"];
                let mut doc = serde_json::Map::new();
                doc.insert("Function".into(), function.into());
                if let Some((name, value)) = &extra {
                    dimensions.push(name);
                    doc.insert((*name).into(), value.clone().into());
                }
                let definitions: Vec<_> = batch
                    .iter()
                    .map(|(name, unit, _)| serde_json::json!({ "Name": name, "Unit": unit.as_str() }))
                    .collect();
                for (name, _, values) in &batch {
                    let value = match values {
                        [one] => serde_json::json!(one),
                        many => serde_json::json!(many),
                    };
                    doc.insert((*name).into(), value);
                }
                doc.insert(
                    "_aws".into(),
                    serde_json::json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [dimensions],
                            "Metrics": definitions,
                        }],
                    }),
                );
                docs.push(serde_json::Value::Object(doc));
            }
        }
        docs
    }
}

/// The process's metrics, which the functions count into.
pub static METRICS: Metrics = Metrics::new();

pub fn count(name: &'static str, n: u64) {
    METRICS.count(name, n);
}

pub fn count_by(name: &'static str, dimension: &'static str, value: &str, n: u64) {
    METRICS.count_by(name, dimension, value, n);
}

pub fn millis(name: &'static str, ms: f64) {
    METRICS.millis(name, ms);
}

/// Writes what is pending: on Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) as JSON lines on stdout
/// for CloudWatch; elsewhere to the log at debug level.
pub fn flush(function: &str) {
    let now = jiff::Timestamp::now().as_millisecond();
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    for doc in METRICS.drain(function, now) {
        if on_lambda {
            println!("{doc}");
        } else {
            tracing::debug!(emf = %doc, "metrics");
        }
    }
}

/// The `Rule` of a decision: the compliance rule in its reason (`[quiet_hours] …`), else its
/// outcome (`contact`, `defer`, `stop`).
pub fn decision_rule<'a>(outcome: &'a str, reason: &'a str) -> &'a str {
    reason
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(rule, _)| rule)
        .filter(|r| !r.is_empty() && r.len() <= 64)
        .unwrap_or(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_follow_the_emf_shape() {
        let m = Metrics::new();
        m.count(MESSAGES_SENT, 1);
        m.count(MESSAGES_SENT, 2);
        m.count_by(MESSAGES_FAILED, "ErrorClass", "rejected", 1);
        m.millis(WEBHOOK_LATENCY, 12.5);
        m.millis(WEBHOOK_LATENCY, 3.0);
        let docs = m.drain("sender", 1_700_000_000_000);
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(
            docs[0],
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Cobro",
                        "Dimensions": [["Function"]],
                        "Metrics": [
                            { "Name": "MessagesSent", "Unit": "Count" },
                            { "Name": "WebhookLatency", "Unit": "Milliseconds" }
                        ]
                    }]
                },
                "Function": "sender",
                "MessagesSent": 3.0,
                "WebhookLatency": [12.5, 3.0]
            })
        );
        assert_eq!(
            docs[1],
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Cobro",
                        "Dimensions": [["Function", "ErrorClass"]],
                        "Metrics": [{ "Name": "MessagesFailed", "Unit": "Count" }]
                    }]
                },
                "Function": "sender",
                "ErrorClass": "rejected",
                "MessagesFailed": 1.0
            })
        );
        assert!(
            m.drain("sender", 0).is_empty(),
            "a drain empties the buffer"
        );
    }

    #[test]
    fn every_document_names_each_dimension_and_metric_as_a_member_within_the_limits() {
        let m = Metrics::new();
        for i in 0..250 {
            m.millis(WEBHOOK_LATENCY, i as f64);
        }
        for rule in ["quiet_hours", "contact"] {
            m.count_by(DECISIONS, "Rule", rule, 1);
        }
        let docs = m.drain("webhook", 1);
        assert_eq!(docs.len(), 5, "3 chunks of latency, 2 rules");
        let mut latencies = 0;
        for doc in &docs {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            for dims in directive["Dimensions"].as_array().unwrap() {
                for d in dims.as_array().unwrap() {
                    assert!(doc[d.as_str().unwrap()].is_string(), "{doc}");
                }
            }
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(metrics.len() <= MAX_METRICS);
            for metric in metrics {
                let value = &doc[metric["Name"].as_str().unwrap()];
                assert!(
                    value.is_number() || value.as_array().is_some_and(|a| a.len() <= MAX_VALUES)
                );
                if let Some(a) = value.as_array() {
                    latencies += a.len();
                }
            }
        }
        assert_eq!(latencies, 250);
    }

    #[test]
    fn a_decision_rule_is_the_bracketed_rule_or_the_outcome() {
        assert_eq!(
            decision_rule("defer", "[quiet_hours] too late (cl)"),
            "quiet_hours"
        );
        assert_eq!(
            decision_rule("contact", "step d+3 of the default"),
            "contact"
        );
        assert_eq!(decision_rule("stop", "[] odd"), "stop");
    }
}
