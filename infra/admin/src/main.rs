//! `cobro-admin`: what an operator does by hand, against the local stack's data directory
//! (`--local .cobro`) or AWS (`--aws`, names from flags or the functions' environment variables).

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = cobro_admin::Cli::parse();
    match cobro_admin::run(cli).await {
        Ok(out) => {
            println!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cobro-admin: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
