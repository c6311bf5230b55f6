mod channels_aws;
mod contract;
mod graph;
mod inbound;
mod ledger;
mod sender;
mod slice;
