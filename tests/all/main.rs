mod channels_aws;
mod contract;
mod inbound;
mod slice;
