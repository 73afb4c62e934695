//! `fabric publish-data`: one message on a domain's data stream.

use crate::cli::PublishDataArgs;
use crate::commands::headers;
use crate::connect;
use crate::failure::Failure;

pub fn run(url: &str, args: PublishDataArgs) -> Result<(), Failure> {
    let headers = headers(&args.headers)?;
    let fabric = connect::fabric(url, &args.domain, false)?;
    fabric
        .publish_data(args.body.as_bytes(), &headers)?
        .wait()?;
    Ok(())
}
