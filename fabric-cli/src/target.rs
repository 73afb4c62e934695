//! A service written `DOMAIN/TYPE/ID` on the command line.

use fabric_core::ServiceAddress;

use crate::failure::Failure;

/// Reads `DOMAIN/TYPE/ID`: a slash cannot occur in amqp-fabric names (a dot can), so the
/// three parts are unambiguous.
pub fn parse(text: &str) -> Result<ServiceAddress, Failure> {
    let parts: Vec<&str> = text.split('/').collect();
    let [domain, service_type, service_id] = parts[..] else {
        return Err(Failure::usage(format!(
            "`{text}` is not a service address: write DOMAIN/TYPE/ID, e.g. my_project/server_app/my_app"
        )));
    };
    ServiceAddress::new(domain, service_type, service_id)
        .map_err(|e| Failure::usage(format!("`{text}` is not a service address: {e}")))
}

/// `DOMAIN/TYPE/ID`, as the command line writes it.
pub fn show(address: &ServiceAddress) -> String {
    format!(
        "{}/{}/{}",
        address.domain(),
        address.service_type(),
        address.service_id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_three_parts_and_refuses_the_rest() {
        let address = parse("shop.eu/calc/c1").unwrap();
        assert_eq!(address.fqn(), "shop.eu.calc.c1");
        assert_eq!(show(&address), "shop.eu/calc/c1");
        for bad in [
            "shop/calc",
            "shop/calc/c1/x",
            "shop//c1",
            "shop/ca lc/c1",
            "",
        ] {
            let failure = parse(bad).unwrap_err();
            assert!(failure.message.contains("not a service address"), "{bad}");
        }
    }
}
