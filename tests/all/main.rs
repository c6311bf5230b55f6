mod channels_aws;
mod contract;
mod graph;
mod inbound;
mod ledger;
mod links;
mod sender;
mod slice;
