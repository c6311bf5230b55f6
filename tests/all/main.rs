mod channels_aws;
mod contract;
mod inbound;
mod sender;
mod slice;
