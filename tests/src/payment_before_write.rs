//! A payment that lands between another writer's read and its write: hooks on a
//! `HookedTable` that apply an armed payment (through their own store on the table beneath)
//! just before the next write that matches, once.

use std::sync::{Arc, Mutex};

use cobro::ports::{Item, Table};
use cobro::repo::{PaymentConfirmed, PaymentOutcome, Store};
use jiff::Timestamp;

use crate::hooked_table::{HookedTable, Hooks, WriteGuard};

pub struct PaymentBeforeWrite {
    inner: Arc<dyn Table>,
    /// Which writes it lands before, by the items they put whole.
    before: fn(&[&Item]) -> bool,
    armed: Mutex<Option<(PaymentConfirmed, Timestamp)>>,
}

impl PaymentBeforeWrite {
    /// `inner`, with a payment landing before the next write `before` picks once one is armed.
    pub fn on(inner: Arc<dyn Table>, before: fn(&[&Item]) -> bool) -> Arc<HookedTable<Self>> {
        HookedTable::new(
            inner.clone(),
            Self {
                inner,
                before,
                armed: Mutex::new(None),
            },
        )
    }

    /// `payment`, applied at `at`, lands before the next matching write.
    pub fn arm(&self, payment: PaymentConfirmed, at: Timestamp) {
        *self.armed.lock().unwrap() = Some((payment, at));
    }

    /// Whether the armed payment is still waiting for its write.
    pub fn is_armed(&self) -> bool {
        self.armed.lock().unwrap().is_some()
    }
}

/// Any write at all.
pub fn any_write(_puts: &[&Item]) -> bool {
    true
}

#[async_trait::async_trait]
impl Hooks for PaymentBeforeWrite {
    async fn writing(&self, puts: &[&Item]) -> WriteGuard {
        if !(self.before)(puts) {
            return None;
        }
        let armed = self.armed.lock().unwrap().take();
        if let Some((payment, at)) = armed {
            let outcome = Store::new(self.inner.clone())
                .apply_payment(&payment, at)
                .await
                .unwrap();
            assert!(
                matches!(outcome, PaymentOutcome::Applied { .. }),
                "{outcome:?}"
            );
        }
        None
    }
}
