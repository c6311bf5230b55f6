mod channels_aws;
mod contract;
mod slice;
