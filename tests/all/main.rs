mod admin;
mod backfill;
mod channels_aws;
mod chat;
mod contract;
mod credit;
mod crm_api;
mod dynamodb_conflicts;
mod events;
mod export;
mod graph;
mod inbound;
mod ledger;
mod links;
mod obs;
// The in-memory partitions file is Linux's (`memfd_create`); elsewhere the SDK keeps its own.
#[cfg(target_os = "linux")]
mod partitions;
mod reminders;
mod sender;
mod slice;
mod stripe;
mod template_refusals;
