//! Debtors, found by the CRM's id or by phone number (GSI1).

use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{Consent, Debtor, DebtorId, Phone, TenantId};
use crate::ports::table::{Condition, TableError, GSI1};
use crate::ports::{Query, SkRange, WriteOp};

/// The CRM's records as sent, except that one it restates keeps its first date; plus every
/// record of another source (the debtor's own opt-outs and opt-ins), and every withdrawal:
/// a grant the CRM no longer sends is a correction and goes, but leaving an opt-out out of a
/// restated list (an older snapshot synced again) must not make the debtor reachable again.
fn merge_consents(old: &[Consent], new: &[Consent]) -> Vec<Consent> {
    let mut merged: Vec<Consent> = new
        .iter()
        .map(|c| {
            old.iter()
                .filter(|o| {
                    o.channel == c.channel && o.granted == c.granted && o.source == c.source
                })
                .min_by_key(|o| o.at)
                .filter(|o| o.at <= c.at)
                .cloned()
                .unwrap_or_else(|| c.clone())
        })
        .collect();
    for o in old {
        let replaced = o.granted
            && new
                .iter()
                .any(|c| c.channel == o.channel && c.source == o.source);
        if !replaced && !merged.contains(o) {
            merged.push(o.clone());
        }
    }
    merged
}

/// The writes of a debtor: the profile (conditional on the `revision` read; `None`: it must not
/// exist yet) and its directory entry. Other writes may join them in one transaction.
pub(super) fn debtor_ops(debtor: &Debtor, revision: Option<i64>) -> Vec<WriteOp> {
    let key = keys::debtor(&debtor.tenant, &debtor.id);
    let mut item = to_item(key, "debtor", debtor);
    item.insert("revision".into(), (revision.unwrap_or(0) + 1).into());
    let condition = match revision {
        None => Condition::NotExists,
        Some(0) => Condition::AttrNotExists("revision".into()),
        Some(r) => Condition::eq("revision", r),
    };
    item.insert(
        GSI1.pk.into(),
        keys::gsi1_phone(&debtor.tenant, &debtor.phone).into(),
    );
    item.insert(GSI1.sk.into(), format!("DEBTOR#{}", debtor.id).into());
    let mut entry = keys::debtor_directory(&debtor.tenant, &debtor.id).into_item();
    entry.insert("kind".into(), "debtor_entry".into());
    entry.insert("debtor".into(), debtor.id.as_str().into());
    // The profile and its directory entry change together.
    vec![
        WriteOp::Put {
            item,
            condition: Some(condition),
        },
        WriteOp::Put {
            item: entry,
            condition: None,
        },
    ]
}

/// The debtor as the CRM sends it, over what is stored: consents merged as history, and the
/// debtor's own choices in the chat kept.
pub(super) fn merge_debtor(old: Option<Debtor>, new: &Debtor) -> Debtor {
    let mut merged = new.clone();
    if let Some(old) = old {
        merged.consents = merge_consents(&old.consents, &new.consents);
        // The debtor's own choices in the chat outlive the CRM's restatements.
        merged.preferences = old.preferences;
        merged.holds = old.holds;
    }
    merged
}

impl Store {
    /// Creates or replaces the debtor (idempotent on the CRM's id). Returns true when created.
    ///
    /// Consent is a history, not a field: what the debtor said on a channel (an opt-out by
    /// keyword, an opt-in) is kept however often the CRM restates its own records, and a
    /// restated CRM consent keeps its first date, so it cannot outdate a later opt-out.
    pub async fn upsert_debtor(&self, debtor: &Debtor) -> Result<bool, RepoError> {
        for _ in 0..5 {
            let key = keys::debtor(&debtor.tenant, &debtor.id);
            let existing = self.table.get(&key).await?;
            let revision = existing
                .as_ref()
                .and_then(|i| i.get("revision")?.as_i64())
                .unwrap_or(0);
            let old = existing.clone().map(from_item::<Debtor>).transpose()?;
            let merged = merge_debtor(old, debtor);
            match self
                .put_debtor(&merged, existing.is_some().then_some(revision))
                .await
            {
                Ok(()) => return Ok(existing.is_none()),
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Conflict(format!(
            "debtor {} keeps changing",
            debtor.id
        )))
    }

    /// Adds one consent record (an opt-out or opt-in the debtor made) to the history.
    pub async fn record_consent(
        &self,
        t: &TenantId,
        d: &DebtorId,
        consent: Consent,
    ) -> Result<Option<Debtor>, RepoError> {
        self.change_debtor(t, d, |debtor| {
            if !debtor.consents.contains(&consent) {
                debtor.consents.push(consent.clone());
            }
        })
        .await
    }

    /// Changes what the debtor prefers (a channel, hours); `None` when there is no such debtor.
    pub async fn set_preferences(
        &self,
        t: &TenantId,
        d: &DebtorId,
        change: impl Fn(&mut crate::domain::Preferences),
    ) -> Result<Option<Debtor>, RepoError> {
        self.change_debtor(t, d, |debtor| change(&mut debtor.preferences))
            .await
    }

    /// Changes the debtor's own holds (an insolvency, a pause) on its latest revision; `None`
    /// when there is no such debtor.
    pub async fn set_debtor_holds(
        &self,
        t: &TenantId,
        d: &DebtorId,
        change: impl Fn(&mut crate::compliance::Holds),
    ) -> Result<Option<Debtor>, RepoError> {
        self.change_debtor(t, d, |debtor| change(&mut debtor.holds))
            .await
    }

    /// Applies `change` to the debtor's latest revision and writes it, again on a conflict;
    /// `None` when there is no such debtor.
    async fn change_debtor(
        &self,
        t: &TenantId,
        d: &DebtorId,
        change: impl Fn(&mut Debtor),
    ) -> Result<Option<Debtor>, RepoError> {
        for _ in 0..5 {
            let Some((mut debtor, revision)) = self.debtor_at_revision(t, d).await? else {
                return Ok(None);
            };
            change(&mut debtor);
            match self.put_debtor(&debtor, Some(revision)).await {
                Ok(()) => return Ok(Some(debtor)),
                Err(RepoError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Conflict(format!("debtor {d} keeps changing")))
    }

    /// Writes the profile and its directory entry together; `revision`: the one read, which
    /// must still be there (`None`: the debtor must not exist yet).
    async fn put_debtor(&self, debtor: &Debtor, revision: Option<i64>) -> Result<(), RepoError> {
        let ops = debtor_ops(debtor, revision);
        match self.table.transact_write(ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(_)) => {
                Err(RepoError::Conflict(format!("debtor {} changed", debtor.id)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The debtor and the revision it was read at, for a write that must fail rather than
    /// overwrite a change made meanwhile (`apply_account_action_with_debtor`).
    pub async fn debtor_at_revision(
        &self,
        t: &TenantId,
        d: &DebtorId,
    ) -> Result<Option<(Debtor, i64)>, RepoError> {
        let Some(item) = self.table.get(&keys::debtor(t, d)).await? else {
            return Ok(None);
        };
        let revision = item.get("revision").and_then(|v| v.as_i64()).unwrap_or(0);
        Ok(Some((from_item(item)?, revision)))
    }

    pub async fn debtor(&self, t: &TenantId, d: &DebtorId) -> Result<Option<Debtor>, RepoError> {
        self.load(&keys::debtor(t, d)).await
    }

    /// A page of the tenant's debtor ids, in id order.
    pub async fn debtor_ids(
        &self,
        t: &TenantId,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<(Vec<DebtorId>, Option<String>), RepoError> {
        let q = Query::table(
            keys::debtor_directory_pk(t),
            SkRange::BeginsWith("DEBTOR#".into()),
        )
        .limit(limit)
        .after(cursor);
        let page = self.table.query(q).await?;
        let ids = page
            .items
            .iter()
            .filter_map(|i| i.get("debtor")?.as_str())
            .map(DebtorId::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
        Ok((ids, page.next))
    }

    pub async fn debtors_by_phone(
        &self,
        t: &TenantId,
        phone: &Phone,
    ) -> Result<Vec<Debtor>, RepoError> {
        let q = Query::index(
            GSI1,
            keys::gsi1_phone(t, phone),
            SkRange::BeginsWith("DEBTOR#".into()),
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }
}
