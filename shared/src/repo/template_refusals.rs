//! Templates WhatsApp refused for a fault of their own (`whatsapp::errors::is_template_fault`),
//! remembered per tenant, name and language until a hold ends: the sender does not call Meta
//! with such a template again meanwhile (one useless call per message, and refusals that can
//! hurt the number's standing), and tries it again after, so a template fixed at Meta works
//! again by itself. The tenant replacing its strategies clears the records of the templates
//! they name.
//!
//! One item per template and language, `T#<t>#TEMPLATES` / `REFUSED#<language>#<name>`, with a
//! `ttl`. Concurrent senders: the latest refusal wins (`refused_ms`), the same one written twice
//! changes nothing, and a refusal of a call made before a clear (`cleared_ms`) is not written
//! over it.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{from_item, keys, written, RepoError, Store, KIND};
use crate::domain::{Language, TenantId};
use crate::ports::table::{Condition, Query, SkRange, TTL};

/// How long a cleared record stays to turn away the refusals of calls made before it: longer
/// than any provider call (the sender's lease is 5 minutes).
pub const CLEARED_KEPT: SignedDuration = SignedDuration::from_mins(10);

const KIND_REFUSAL: &str = "template_refusal";
const REFUSED_MS: &str = "refused_ms";
const CLEARED_MS: &str = "cleared_ms";

/// That Meta refused a tenant's template in a language, when, why, and until when it is not
/// tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRefusal {
    pub tenant: TenantId,
    pub template: String,
    pub language: Language,
    /// Meta's error code (`132000`, `132001`, `132015` …).
    pub code: i64,
    pub reason: String,
    /// When the refused call was made: a refusal of a call made before the record was
    /// cleared is not recorded over the clear.
    pub tried_at: Timestamp,
    pub refused_at: Timestamp,
    /// The template is not tried again before this.
    pub until: Timestamp,
}

impl Store {
    /// Remembers a refusal until `r.until`. `Ok(false)`: not written, because the record
    /// holds this refusal or a later one already, or was cleared after the refused call was
    /// made (the tenant changed its strategies meanwhile).
    pub async fn record_template_refusal(&self, r: &TemplateRefusal) -> Result<bool, RepoError> {
        let key = keys::template_refusal(&r.tenant, r.language.as_str(), &r.template);
        let mut item = super::to_item(key, KIND_REFUSAL, r);
        item.insert(REFUSED_MS.into(), r.refused_at.as_millisecond().into());
        item.insert(TTL.into(), ttl(r.until).into());
        let newer = Condition::Or(vec![
            Condition::NotExists,
            Condition::lt(REFUSED_MS, r.refused_at.as_millisecond()),
            Condition::lt(CLEARED_MS, r.tried_at.as_millisecond()),
        ]);
        written(self.table.put(item, Some(newer)).await)
    }

    /// The refusal that holds the template back at `now`, if one does (none once its hold
    /// ended, even before the table deletes the item).
    pub async fn template_refusal(
        &self,
        t: &TenantId,
        template: &str,
        language: Language,
        now: Timestamp,
    ) -> Result<Option<TemplateRefusal>, RepoError> {
        let key = keys::template_refusal(t, language.as_str(), template);
        match self.table.get(&key).await? {
            Some(item) => holding(item, now),
            None => Ok(None),
        }
    }

    /// Every refusal that holds one of the tenant's templates back at `now`, by language and
    /// name: what an operator looks at to see which templates to fix at Meta. One query of the
    /// tenant's template partition (a handful of items: one per template and language).
    pub async fn held_template_refusals(
        &self,
        t: &TenantId,
        now: Timestamp,
    ) -> Result<Vec<TemplateRefusal>, RepoError> {
        let q = Query::table(
            keys::templates_pk(t),
            SkRange::BeginsWith("REFUSED#".into()),
        );
        let items = self.query_all(q).await?;
        let mut held = vec![];
        for item in items {
            held.extend(holding(item, now)?);
        }
        Ok(held)
    }

    /// Clears the records of these templates (name per language): each is tried at its next
    /// message. Idempotent; a refusal of a call made before `now` is not recorded after it.
    pub async fn clear_template_refusals(
        &self,
        t: &TenantId,
        templates: &[(Language, String)],
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let expires = ttl(now.saturating_add(CLEARED_KEPT).expect("in range"));
        for (language, name) in templates {
            let mut item = keys::template_refusal(t, language.as_str(), name).into_item();
            item.insert(KIND.into(), KIND_REFUSAL.into());
            item.insert(CLEARED_MS.into(), now.as_millisecond().into());
            item.insert("cleared_at".into(), now.to_string().into());
            item.insert(TTL.into(), expires.into());
            self.table.put(item, None).await?;
        }
        Ok(())
    }
}

/// The refusal a record holds, if it still holds the template back at `now`: none once its
/// hold ended (even before the table deletes the item), none if cleared (no refusal in it).
fn holding(item: crate::ports::Item, now: Timestamp) -> Result<Option<TemplateRefusal>, RepoError> {
    if !item.contains_key(REFUSED_MS) {
        return Ok(None);
    }
    let refusal: TemplateRefusal = from_item(item)?;
    Ok((refusal.until > now).then_some(refusal))
}

/// The `ttl` of an item that matters until `until` (epoch seconds, rounded up).
fn ttl(until: Timestamp) -> i64 {
    let secs = until.as_second();
    if until.subsec_nanosecond() > 0 {
        secs + 1
    } else {
        secs
    }
}
