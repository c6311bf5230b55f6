//! The SDK configuration the Lambda binaries share.

use aws_config::BehaviorVersion;

/// Region and credentials from the standard chain (on Lambda: the environment). It also honours
/// `AWS_ENDPOINT_URL`, which is how tests point the SDK at a local emulator.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
