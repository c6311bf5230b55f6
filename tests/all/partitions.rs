//! The commercial partition alone (`adapters::aws::partitions`, what every Lambda binary uses
//! in a commercial region) resolves every endpoint the functions use exactly as the SDK's full
//! set of partitions does.

use std::collections::BTreeMap;
use std::process::Command;

use cobro::adapters::aws::partitions::{use_commercial_only, Partitions, SDK_VARIABLE};

/// Set for the child process that resolves with the commercial partition alone.
const CHILD: &str = "COBRO_PARTITIONS_CHILD";

const REGIONS: [&str; 12] = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "sa-east-1",
    "mx-central-1",
    "ca-central-1",
    "eu-west-1",
    "eu-south-2",
    "ap-southeast-7",
    "af-south-1",
    "il-central-1",
    "me-central-1",
];

/// One service's endpoint for a region, plainly or with FIPS and dual-stack: its URL and its
/// properties (the signing scheme and region), or the resolver's error.
macro_rules! resolve {
    ($sdk:ident, $region:expr, $fips:expr, $dual:expr) => {{
        use $sdk::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let params = Params::builder()
            .region($region.to_string())
            .use_fips($fips)
            .use_dual_stack($dual)
            .build()
            .expect("endpoint parameters");
        match DefaultResolver::new().resolve_endpoint(&params).await {
            Ok(e) => {
                let properties: BTreeMap<_, _> = e.properties().iter().collect();
                format!("{} {properties:?}", e.url())
            }
            Err(e) => format!("error: {e}"),
        }
    }};
}

/// Every service the Lambda binaries reach through an SDK client, in every listed region.
async fn endpoints() -> Vec<String> {
    let mut lines = Vec::new();
    for region in REGIONS {
        for (fips, dual) in [(false, false), (true, false), (false, true), (true, true)] {
            let at = format!("{region} fips={fips} dual-stack={dual}");
            let resolved = [
                ("dynamodb", resolve!(aws_sdk_dynamodb, region, fips, dual)),
                ("sqs", resolve!(aws_sdk_sqs, region, fips, dual)),
                ("events", resolve!(aws_sdk_eventbridge, region, fips, dual)),
                (
                    "secretsmanager",
                    resolve!(aws_sdk_secretsmanager, region, fips, dual),
                ),
                ("sesv2", resolve!(aws_sdk_sesv2, region, fips, dual)),
                (
                    "sms-voice",
                    resolve!(aws_sdk_pinpointsmsvoicev2, region, fips, dual),
                ),
            ];
            for (service, endpoint) in resolved {
                lines.push(format!("{service} {at}: {endpoint}"));
            }
        }
    }
    lines
}

#[tokio::test]
async fn the_commercial_partition_alone_resolves_every_endpoint_as_the_sdk_does() {
    // This process keeps the SDK's own partitions: nothing in it sets the variable.
    assert!(std::env::var_os(SDK_VARIABLE).is_none());
    let expected = endpoints().await;

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "partitions::resolved_in_a_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("AWS_REGION", "sa-east-1")
        .env_remove(SDK_VARIABLE)
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let resolved: Vec<String> = stdout
        .lines()
        .skip_while(|l| *l != "BEGIN")
        .skip(1)
        .take_while(|l| *l != "END")
        .map(str::to_string)
        .collect();

    assert_eq!(resolved.len(), expected.len(), "child output: {stdout}");
    for (got, want) in resolved.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    // The comparison covers real endpoints, not errors alone.
    assert!(expected
        .iter()
        .any(|l| l.contains("https://dynamodb.sa-east-1.amazonaws.com")));
    assert!(expected
        .iter()
        .any(|l| l.contains("https://sqs-fips.us-east-1.api.aws")));
}

#[tokio::test]
#[ignore = "run by the test above, in a process of its own"]
async fn resolved_in_a_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let Partitions::Commercial(path) = use_commercial_only() else {
        panic!("sa-east-1 should get the commercial partition alone");
    };
    assert_eq!(std::env::var(SDK_VARIABLE).unwrap(), path);
    println!("BEGIN");
    for line in endpoints().await {
        println!("{line}");
    }
    println!("END");
}
