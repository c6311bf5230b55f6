//! The SDK's endpoint partitions, cut to the commercial one for a process in a commercial region.
//!
//! Each AWS SDK crate embeds every partition (all regions of all eight: commercial, China,
//! GovCloud, the isolated and the sovereign clouds) and parses them, with a regex per partition,
//! when its first client is built: about 0.6 M instructions per crate, 40–50 % of a function's
//! instructions to its first poll (docs/benchmarks.md, "Cold start, session 8"). The SDK reads a
//! partitions file instead when `SMITHY_CLIENT_SDK_CUSTOM_PARTITION` names one. A process whose
//! region is commercial gets the commercial partition alone, as an in-memory file, and endpoints
//! resolve exactly as with the SDK's own copy (the tests compare them for every service cobro
//! uses). Any other region, the variable already set, or a process that cannot make the file
//! keeps the SDK's default.

/// The variable the SDK's crates read, once each, when their first client is built.
pub const SDK_VARIABLE: &str = "SMITHY_CLIENT_SDK_CUSTOM_PARTITION";

/// The SDK's "aws" partition as its crates embed it, without its list of regions: a region the
/// regex matches resolves to this partition either way, and no commercial region overrides an
/// output.
pub const COMMERCIAL: &str = r#"{"partitions":[{"id":"aws","outputs":{"dnsSuffix":"amazonaws.com","dualStackDnsSuffix":"api.aws","implicitGlobalRegion":"us-east-1","name":"aws","supportsDualStack":true,"supportsFIPS":true},"regionRegex":"^(us|eu|ap|sa|ca|me|af|il|mx)\\-\\w+\\-\\d+$","regions":{}}],"version":"1.1"}"#;

/// Which partitions the SDK will use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitions {
    /// The commercial partition alone, read from this path.
    Commercial(String),
    /// The SDK's own, for the reason given.
    Default(String),
}

/// Points the SDK at the commercial partition alone when `AWS_REGION` is commercial.
///
/// It sets an environment variable, so it must run while the process has one thread, and before
/// any SDK client is built: at the top of a Lambda binary's `main` (`lambda::init`).
pub fn use_commercial_only() -> Partitions {
    if let Some(path) = std::env::var_os(SDK_VARIABLE) {
        return Partitions::Default(format!("{SDK_VARIABLE} is set: {}", path.to_string_lossy()));
    }
    let region = std::env::var("AWS_REGION").unwrap_or_default();
    if !is_commercial(&region) {
        return Partitions::Default(format!("AWS_REGION {region:?} is not a commercial region"));
    }
    match in_memory_file(COMMERCIAL.as_bytes()) {
        Ok(path) => {
            std::env::set_var(SDK_VARIABLE, &path);
            Partitions::Commercial(path)
        }
        Err(e) => Partitions::Default(format!("no in-memory file: {e}")),
    }
}

/// Whether the commercial partition's regex, `^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$`,
/// matches `region` (regex-lite's `\w` and `\d` are ASCII). No other partition's region does:
/// theirs start `cn-`, `eusc-`, or have a third part (`us-gov-west-1`, `us-iso-east-1`).
pub fn is_commercial(region: &str) -> bool {
    const AREAS: [&str; 9] = ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"];
    let parts: Vec<&str> = region.split('-').collect();
    let [area, place, number] = parts[..] else {
        return false;
    };
    AREAS.contains(&area)
        && !place.is_empty()
        && place
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// A file that exists only in this process's memory, by a path the SDK can open: nothing is
/// written to disk, and it lives as long as the process (a client built on first use, long
/// after start, reads it then).
#[cfg(target_os = "linux")]
fn in_memory_file(contents: &[u8]) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // The raw system call: glibc's `memfd_create` wrapper is newer than the glibc that
    // cargo-lambda's Zig links against by default.
    // SAFETY: the name is a NUL-terminated string, and the flag is one memfd_create knows.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            c"cobro-sdk-partitions".as_ptr(),
            libc::MFD_CLOEXEC,
        )
    };
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::other("bad descriptor"))?;
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just opened here and nothing else owns it.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(contents)?;
    let path = format!("/proc/self/fd/{fd}");
    // The SDK opens the path later and stops the process if it cannot: check it now (a
    // sandbox without /proc, say), while falling back is still possible.
    if std::fs::read(&path)? != contents {
        return Err(std::io::Error::other(format!("{path} does not read back")));
    }
    // Kept open for the life of the process.
    std::mem::forget(file);
    Ok(path)
}

#[cfg(not(target_os = "linux"))]
fn in_memory_file(_: &[u8]) -> std::io::Result<String> {
    Err(std::io::Error::other("in-memory files are Linux only"))
}

#[cfg(test)]
mod tests {
    use super::is_commercial;

    #[test]
    fn commercial_regions_are_the_ones_the_sdk_regex_matches() {
        for region in [
            "us-east-1",
            "sa-east-1",
            "mx-central-1",
            "eu-west-3",
            "ap-southeast-7",
            "il-central-1",
            "af-south-1",
            "ca-west-1",
            "me-central-1",
        ] {
            assert!(is_commercial(region), "{region}");
        }
        for region in [
            "",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "us-isof-south-1",
            "cn-north-1",
            "eusc-de-east-1",
            "aws-global",
            "us-east-",
            "us--1",
            "us-east-1a",
            "xx-east-1",
            "us-east-1-",
        ] {
            assert!(!is_commercial(region), "{region}");
        }
    }
}
