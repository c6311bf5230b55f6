//! The build script of every Lambda crate: links its binary as a fixed-address (non-PIE)
//! executable on Linux. A PIE's dynamic loader applies tens of thousands of relative
//! relocations before `main` (patching every pointer in .data.rel.ro, about 450 KB for the CRM
//! API) on each cold start; a fixed-address executable has them resolved at link time
//! (docs/benchmarks.md, "Cold start, session 4"). The code is still compiled position
//! independent, so dependencies that also build shared libraries are unaffected, and so are
//! the crates' libraries, their tests and the local stack.
//! `COBRO_PIE=1` at build time keeps the default, a PIE.
fn main() {
    println!("cargo:rerun-if-env-changed=COBRO_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux && std::env::var_os("COBRO_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
