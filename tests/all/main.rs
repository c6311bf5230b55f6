mod channels_aws;
mod contract;
mod graph;
mod inbound;
mod sender;
mod slice;
