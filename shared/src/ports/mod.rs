//! The narrow interfaces the domain talks through. Adapters live in `crate::adapters`.

pub mod blobs;
pub mod bus;
pub mod channel;
pub mod clock;
pub mod links;
pub mod media;
pub mod queue;
pub mod secrets;
pub mod table;

pub use blobs::{BlobError, Blobs};
pub use bus::{Bus, BusError, Event, Pattern};
pub use channel::{
    Channel, ChannelError, ChannelMessage, Channels, ChoiceSet, FailureClass, Form, Recipient,
    SendAs, TemplateRef,
};
pub use clock::{Clock, FixedClock, ShiftedClock, SystemClock};
pub use links::{LinkError, LinkRequest, PaymentLink, PaymentLinks};
pub use media::{MediaSource, Medium};
pub use queue::{Outgoing, Queue, QueueError, Received};
pub use secrets::{CachedSecrets, DeploymentSecrets, Secrets, SecretsError, WhatsAppSecrets};
pub use table::{
    Condition, IndexDef, Item, Key, Page, Query, SkRange, Table, TableError, Update, WriteOp,
};
