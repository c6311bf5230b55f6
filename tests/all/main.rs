mod contract;
mod slice;
