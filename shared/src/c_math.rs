//! The C math functions the Lambda binaries call, from the `libm` crate, so that they link
//! without glibc's `libm.so.6`.
//!
//! Two calls made libm a dependency of every Lambda binary:
//! - the SDK's adaptive retry rate limiter (`aws-smithy-runtime`) takes a cube root with
//!   `powf`;
//! - the XLSX writer takes a `log2`.
//!
//! Loading the library costs about 0.2 ms of each cold start: its mappings, its IFUNC
//! relocations and its teardown at exit. That is a tenth of a function's init
//! (docs/benchmarks.md, "Cold start, session 8"). Defined here, in the same fat-LTO module as
//! their callers, the symbols resolve at link time, and `--as-needed` drops the library.
//!
//! Only the Lambda binaries need this (feature `lambda`, Linux). The `libm` crate is a port of
//! musl's, which is accurate to within an ulp.

/// `pow(3)`.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// `log2(3)`.
#[no_mangle]
pub extern "C" fn log2(x: f64) -> f64 {
    libm::log2(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_functions_the_binaries_call_give_the_right_values() {
        // What the SDK computes: a cube root.
        assert!((27f64.powf(1.0 / 3.0) - 3.0).abs() < 1e-12);
        assert_eq!(2f64.powf(10.0), 1024.0);
        assert_eq!(super::pow(2.0, -1.0), 0.5);
        assert!(super::pow(-8.0, 0.5).is_nan());
        assert_eq!(super::log2(1024.0), 10.0);
        assert_eq!(1024f64.log2(), 10.0);
        assert_eq!(super::log2(0.0), f64::NEG_INFINITY);
    }
}
