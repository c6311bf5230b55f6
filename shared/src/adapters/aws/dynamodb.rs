//! `Table` on DynamoDB. Conditions and updates become expressions with placeholders for every
//! name and value, so no attribute name or value is ever spliced into an expression.

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, PutRequest, ReturnValue,
    TransactWriteItem, Update as DynUpdate, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use base64::Engine as _;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::time::Duration;

use super::{code, describe};
use crate::ports::table::{
    check_item, check_transaction, check_updates, index_def, Condition, Item, Key, Page, Query,
    SkRange, Table, TableError, Update, WriteOp, INDEXES, MAX_BATCH_WRITE, PK, SK,
};

#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    name: String,
}

impl DynamoTable {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            name: table_name.into(),
        }
    }
}

pub(crate) fn to_av(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_av).collect()),
        Value::Object(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_av(v))).collect())
        }
    }
}

pub(crate) fn from_av(av: &AttributeValue) -> Result<Value, TableError> {
    Ok(match av {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => match n.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => n
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| TableError::Backend(format!("number `{n}` out of range")))?,
        },
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(from_av).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(from_map(m)?),
        other => {
            return Err(TableError::Backend(format!(
                "unsupported attribute type {other:?}"
            )))
        }
    })
}

fn from_map(m: &HashMap<String, AttributeValue>) -> Result<Map<String, Value>, TableError> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
        .collect()
}

fn to_map(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(key.pk.clone())),
        (SK.to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

/// Placeholders for one request's expressions.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        if let Some((k, _)) = self.names.iter().find(|(_, v)| v.as_str() == attr) {
            return k.clone();
        }
        let k = format!("#n{}", self.names.len());
        self.names.insert(k.clone(), attr.to_string());
        k
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let k = format!(":v{}", self.values.len());
        self.values.insert(k.clone(), v);
        k
    }

    fn condition(&mut self, c: &Condition) -> String {
        let mut cmp = |a: &str, op: &str, v: &Value| {
            let n = self.name(a);
            let v = self.value(to_av(v));
            format!("{n} {op} {v}")
        };
        match c {
            Condition::Eq(a, v) => cmp(a, "=", v),
            Condition::Ne(a, v) => cmp(a, "<>", v),
            Condition::Lt(a, v) => cmp(a, "<", v),
            Condition::Le(a, v) => cmp(a, "<=", v),
            Condition::Gt(a, v) => cmp(a, ">", v),
            Condition::Ge(a, v) => cmp(a, ">=", v),
            Condition::Exists => format!("attribute_exists({})", self.name(PK)),
            Condition::NotExists => format!("attribute_not_exists({})", self.name(PK)),
            Condition::AttrExists(a) => format!("attribute_exists({})", self.name(a)),
            Condition::AttrNotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            // DynamoDB has no literal true or false: these tautologies stand in for them.
            Condition::And(cs) if cs.is_empty() => self.condition(&Condition::Or(vec![
                Condition::Exists,
                Condition::NotExists,
            ])),
            Condition::Or(cs) if cs.is_empty() => self.condition(&Condition::And(vec![
                Condition::Exists,
                Condition::NotExists,
            ])),
            Condition::And(cs) => self.join(cs, " AND "),
            Condition::Or(cs) => self.join(cs, " OR "),
        }
    }

    fn join(&mut self, cs: &[Condition], op: &str) -> String {
        let parts: Vec<String> = cs
            .iter()
            .map(|c| format!("({})", self.condition(c)))
            .collect();
        parts.join(op)
    }

    fn updates(&mut self, updates: &[Update]) -> Option<String> {
        let (mut set, mut add, mut remove) = (vec![], vec![], vec![]);
        for u in updates {
            match u {
                Update::Set(a, v) => {
                    let n = self.name(a);
                    set.push(format!("{n} = {}", self.value(to_av(v))));
                }
                Update::Add(a, by) => {
                    let n = self.name(a);
                    add.push(format!(
                        "{n} {}",
                        self.value(AttributeValue::N(by.to_string()))
                    ));
                }
                Update::Remove(a) => remove.push(self.name(a)),
            }
        }
        let mut clauses = vec![];
        for (verb, list) in [("SET", set), ("ADD", add), ("REMOVE", remove)] {
            if !list.is_empty() {
                clauses.push(format!("{verb} {}", list.join(", ")));
            }
        }
        (!clauses.is_empty()).then(|| clauses.join(" "))
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn encode_cursor(key: &HashMap<String, AttributeValue>) -> Result<String, TableError> {
    let json = Value::Object(from_map(key)?).to_string();
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: &str) -> Result<HashMap<String, AttributeValue>, TableError> {
    let bad = || TableError::Invalid("malformed cursor".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let map: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(to_map(&map))
}

fn sk_expr(e: &mut Expr, attr: &str, range: &SkRange) -> Option<String> {
    let mut s = |v: &String| e.value(AttributeValue::S(v.clone()));
    let (op, v) = match range {
        SkRange::All => return None,
        SkRange::Eq(v) => ("=", v),
        SkRange::Lt(v) => ("<", v),
        SkRange::Le(v) => ("<=", v),
        SkRange::Gt(v) => (">", v),
        SkRange::Ge(v) => (">=", v),
        SkRange::Between(a, b) => {
            let (a, b) = (s(a), s(b));
            let n = e.name(attr);
            return Some(format!("{n} BETWEEN {a} AND {b}"));
        }
        SkRange::BeginsWith(p) => {
            let p = s(p);
            let n = e.name(attr);
            return Some(format!("begins_with({n}, {p})"));
        }
    };
    let v = s(v);
    let n = e.name(attr);
    Some(format!("{n} {op} {v}"))
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> TableError {
    TableError::Invalid(e.to_string())
}

impl DynamoTable {
    fn transact_item(&self, op: WriteOp) -> Result<TransactWriteItem, TableError> {
        let mut e = Expr::default();
        Ok(match op {
            WriteOp::Put { item, condition } => {
                let cond = condition.map(|c| e.condition(&c));
                let put = Put::builder()
                    .table_name(&self.name)
                    .set_item(Some(to_map(&item)))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().put(put).build()
            }
            WriteOp::Update {
                key,
                updates,
                condition,
            } => {
                check_updates(&updates)?;
                check_index_updates(&updates)?;
                let cond = condition.map(|c| e.condition(&c));
                let update = e.updates(&updates).ok_or_else(|| {
                    TableError::Invalid(
                        "an update in a transaction needs at least one change".into(),
                    )
                })?;
                let u = DynUpdate::builder()
                    .table_name(&self.name)
                    .set_key(Some(key_map(&key)))
                    .update_expression(update)
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().update(u).build()
            }
            WriteOp::Delete { key, condition } => {
                let cond = condition.map(|c| e.condition(&c));
                let d = Delete::builder()
                    .table_name(&self.name)
                    .set_key(Some(key_map(&key)))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().delete(d).build()
            }
            WriteOp::Check { key, condition } => {
                let cond = e.condition(&condition);
                let c = ConditionCheck::builder()
                    .table_name(&self.name)
                    .set_key(Some(key_map(&key)))
                    .condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().condition_check(c).build()
            }
        })
    }
}

/// ConditionalCheckFailed becomes `ConditionFailed`, a request DynamoDB calls invalid
/// `Invalid`; anything else is the backend's, with the service's code.
fn map_conditional<E>(e: aws_sdk_dynamodb::error::SdkError<E, HttpResponse>) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match code(&e) {
        Some("ConditionalCheckFailedException") => TableError::ConditionFailed,
        Some("ValidationException") => TableError::Invalid(describe(&e)),
        _ => TableError::Backend(describe(&e)),
    }
}

/// Updates must keep index key attributes strings, as `check_item` demands of a put. DynamoDB
/// refuses them itself, but moto does not: checking here keeps moto, AWS and SQLite alike.
fn check_index_updates(updates: &[Update]) -> Result<(), TableError> {
    for u in updates {
        let (attr, is_string) = match u {
            Update::Set(a, v) => (a, v.is_string()),
            Update::Add(a, _) => (a, false),
            Update::Remove(_) => continue,
        };
        if !is_string && INDEXES.iter().any(|i| i.pk == attr || i.sk == attr) {
            return Err(TableError::Invalid(format!(
                "index key attribute `{attr}` must be a string"
            )));
        }
    }
    Ok(())
}

/// One write per key, with the effect of applying the puts in order and then the deletes (what
/// the SQLite adapter does). DynamoDB refuses a BatchWriteItem naming one key twice, so without
/// this a repeated key would fail or not depending on where the chunks of 25 split.
fn net_writes(puts: Vec<Item>, deletes: Vec<Key>) -> Result<Vec<(Key, Option<Item>)>, TableError> {
    let mut writes: Vec<(Key, Option<Item>)> = Vec::with_capacity(puts.len() + deletes.len());
    let mut at: HashMap<Key, usize> = HashMap::new();
    let puts = puts
        .into_iter()
        .map(|item| Ok((check_item(&item)?, Some(item))))
        .collect::<Result<Vec<_>, TableError>>()?;
    for (key, write) in puts
        .into_iter()
        .chain(deletes.into_iter().map(|k| (k, None)))
    {
        match at.get(&key) {
            Some(&i) => writes[i].1 = write,
            None => {
                at.insert(key.clone(), writes.len());
                writes.push((key, write));
            }
        }
    }
    Ok(writes)
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_conditional)?;
        out.item().map(from_map).transpose()
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        check_item(&item)?;
        let mut e = Expr::default();
        let cond = condition.map(|c| e.condition(&c));
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_map(&item)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(map_conditional)?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        check_updates(&updates)?;
        check_index_updates(&updates)?;
        let mut e = Expr::default();
        let cond = condition.map(|c| e.condition(&c));
        let update = e.updates(&updates);
        let out = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .set_update_expression(update)
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(map_conditional)?;
        match out.attributes() {
            Some(a) => from_map(a),
            None => Ok(key.clone().into_item()),
        }
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, TableError> {
        let mut e = Expr::default();
        let cond = condition.map(|c| e.condition(&c));
        let out = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(map_conditional)?;
        out.attributes().map(from_map).transpose()
    }

    async fn query(&self, q: Query) -> Result<Page, TableError> {
        if q.limit == Some(0) {
            return Err(TableError::Invalid("limit must be at least 1".into()));
        }
        let (pk_attr, sk_attr) = match q.index {
            None => (PK, SK),
            Some(name) => {
                let idx = index_def(name)
                    .ok_or_else(|| TableError::Invalid(format!("no index `{name}`")))?;
                (idx.pk, idx.sk)
            }
        };
        let mut e = Expr::default();
        let pk = format!(
            "{} = {}",
            e.name(pk_attr),
            e.value(AttributeValue::S(q.pk.clone()))
        );
        let key_condition = match sk_expr(&mut e, sk_attr, &q.sk) {
            Some(sk) => format!("{pk} AND {sk}"),
            None => pk,
        };
        let start = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(q.index.map(str::to_string))
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(q.forward)
            .set_limit(q.limit.map(|n| n.min(i32::MAX as u32) as i32))
            .set_exclusive_start_key(start)
            .set_consistent_read(q.index.is_none().then_some(true))
            .send()
            .await
            .map_err(map_conditional)?;
        let items = out
            .items()
            .iter()
            .map(from_map)
            .collect::<Result<Vec<_>, _>>()?;
        let next = out.last_evaluated_key().map(encode_cursor).transpose()?;
        Ok(Page { items, next })
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        check_transaction(&ops)?;
        for op in &ops {
            if let WriteOp::Put { item, .. } = op {
                check_item(item)?;
            }
        }
        let n = ops.len();
        let items = ops
            .into_iter()
            .map(|op| self.transact_item(op))
            .collect::<Result<Vec<_>, _>>()?;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                    let reasons = t.cancellation_reasons();
                    let failed: Vec<bool> = (0..n)
                        .map(|i| {
                            reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                        })
                        .collect();
                    let codes: Vec<&str> =
                        reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
                    if failed.iter().any(|f| *f) {
                        Err(TableError::TransactionCanceled(failed))
                    } else if codes.contains(&"ValidationError") {
                        Err(TableError::Invalid(format!(
                            "transaction refused, reasons per operation: {codes:?}"
                        )))
                    } else {
                        // Another reason: a conflict that outlasted the client's retries
                        // (`dynamodb_client`), throttling. The caller's delivery retries.
                        Err(TableError::Backend(format!(
                            "TransactionCanceledException, reasons per operation: {codes:?}"
                        )))
                    }
                }
                _ => Err(map_conditional(e)),
            },
        }
    }

    async fn batch_write(&self, puts: Vec<Item>, deletes: Vec<Key>) -> Result<(), TableError> {
        let requests = net_writes(puts, deletes)?
            .into_iter()
            .map(|(key, write)| {
                Ok(match write {
                    Some(item) => WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(to_map(&item)))
                                .build()
                                .map_err(build_err)?,
                        )
                        .build(),
                    None => WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(key_map(&key)))
                                .build()
                                .map_err(build_err)?,
                        )
                        .build(),
                })
            })
            .collect::<Result<Vec<_>, TableError>>()?;
        for chunk in requests.chunks(MAX_BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            // DynamoDB may leave some items unprocessed under load: retry them with backoff.
            for attempt in 0..8u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, pending)
                    .send()
                    .await
                    .map_err(map_conditional)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|m| m.get(&self.name))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == 7 {
                    return Err(TableError::Backend(format!(
                        "{} items stayed unprocessed",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_through_attribute_values() {
        let v = json!({
            "s": "ñ", "i": i64::MIN, "f": -0.5, "b": false, "n": null,
            "l": [1, [2], {"k": "v"}], "m": {"a": {"b": []}}
        });
        assert_eq!(from_av(&to_av(&v)).unwrap(), v);
    }

    #[test]
    fn expressions_hold_only_placeholders() {
        let mut e = Expr::default();
        let c = e.condition(&Condition::Or(vec![
            Condition::eq("a.b", "x) OR (1 = 1"),
            Condition::AttrNotExists("#n0".into()),
        ]));
        let u = e
            .updates(&[Update::set("a.b", 1), Update::remove("size")])
            .unwrap();
        assert_eq!(c, "(#n0 = :v0) OR (attribute_not_exists(#n1))");
        assert_eq!(u, "SET #n0 = :v1 REMOVE #n2");
        assert_eq!(e.names.get("#n1").map(String::as_str), Some("#n0"));
    }

    #[test]
    fn a_batch_writes_each_key_once_with_the_net_effect() {
        let it = |sk: &str, v: i64| {
            let mut i = Key::new("p", sk).into_item();
            i.insert("v".into(), json!(v));
            i
        };
        let writes = net_writes(
            vec![it("a", 1), it("b", 1), it("a", 2)],
            vec![Key::new("p", "b"), Key::new("p", "c")],
        )
        .unwrap();
        assert_eq!(
            writes,
            vec![
                (Key::new("p", "a"), Some(it("a", 2))),
                (Key::new("p", "b"), None),
                (Key::new("p", "c"), None),
            ]
        );
    }

    #[test]
    fn cursors_round_trip() {
        let key = key_map(&Key::new("p", "s/ñ"));
        assert_eq!(decode_cursor(&encode_cursor(&key).unwrap()).unwrap(), key);
        assert!(decode_cursor("not a cursor").is_err());
    }
}
