//! update-dns: flip the Route 53 health checks or UPSERT the CNAME, per the plan's DNS mode (see the module docs).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::update_dns::handle).await
}
