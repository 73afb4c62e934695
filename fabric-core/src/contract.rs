//! A service's contract: its methods as the trait wrote them, announced in keep-alives so that
//! clients and people can see what a running service takes and returns.
//!
//! `#[fabric_service]` generates the contract of a trait (`{Trait}Server::contract()` and
//! `{Trait}Client::contract()`); a server announces it in its keep-alives and
//! [`ServiceInfo::contract`](crate::ServiceInfo::contract) reads it back. Types are text, as
//! written in the trait (with spacing made canonical): a contract describes, it does not
//! convert.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The methods of a service: what its clients may call, with what, and what comes back.
///
/// ```
/// use fabric_core::{Contract, MethodContract};
///
/// let contract = Contract::new("Multiplier").method(
///     MethodContract::new("multiply")
///         .param("x", "i64")
///         .param("y", "i64")
///         .returns("i64")
///         .doc("Multiplies two numbers."),
/// );
/// assert_eq!(contract.methods()[0].to_string(), "multiply(x: i64, y: i64) -> i64");
/// assert_eq!(contract.hash(), contract.clone().hash());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    service: String,
    methods: Vec<MethodContract>,
}

/// One method of a [`Contract`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodContract {
    name: String,
    params: Vec<Param>,
    returns: String,
    #[serde(default)]
    doc: String,
    #[serde(default)]
    idempotent: bool,
    #[serde(default)]
    fallible: bool,
}

/// One parameter of a [`MethodContract`]: its name (the keyword of a JSON call) and its type
/// as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// The stable hash of a [`Contract`]: 64-bit FNV-1a over its canonical text (see
/// [`Contract::canonical`]), the same on every build and platform. Shown and parsed as 16
/// hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContractHash(pub u64);

impl Contract {
    /// A contract of the service `service` (the trait's name) with no methods yet.
    pub fn new(service: &str) -> Contract {
        Contract {
            service: service.to_owned(),
            methods: Vec::new(),
        }
    }

    /// Adds `method`, after those already there.
    #[must_use = "method returns the contract with the method added"]
    pub fn method(mut self, method: MethodContract) -> Contract {
        self.methods.push(method);
        self
    }

    /// The service's name: its trait's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The methods, in the trait's order (the built-in `health_check` is not one of them).
    pub fn methods(&self) -> &[MethodContract] {
        &self.methods
    }

    /// The method called `name`, if the contract has it.
    pub fn find(&self, name: &str) -> Option<&MethodContract> {
        self.methods.iter().find(|method| method.name == name)
    }

    /// The text the hash is taken over: one line per method, sorted by name, each its
    /// signature, then ` idempotent` when it is. The service's name and the doc comments are
    /// not part of it: renaming a trait or rewording a doc does not change what a client may
    /// call.
    pub fn canonical(&self) -> String {
        let mut lines: Vec<String> = self
            .methods
            .iter()
            .map(|method| {
                let mut line = method.to_string();
                if method.idempotent {
                    line.push_str(" idempotent");
                }
                line
            })
            .collect();
        lines.sort();
        let mut text = String::from("fabric-contract 1\n");
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// The contract's stable hash (see [`ContractHash`]).
    pub fn hash(&self) -> ContractHash {
        ContractHash(fnv1a(self.canonical().as_bytes()))
    }

    /// The first way a client built for this contract (`self`, "here") could go wrong with
    /// a service that announces `there`, in words; `None` when every method here is served
    /// there alike: same parameters (names, types, order) and return type, and idempotent
    /// there if it is here. Methods served there and unknown here, and doc comments, do not
    /// matter.
    ///
    /// ```
    /// use fabric_core::{Contract, MethodContract};
    ///
    /// let divide = |a: &str, b: &str| {
    ///     MethodContract::new("divide").param(a, "i64").param(b, "i64").returns("i64")
    /// };
    /// let here = Contract::new("Calc").method(divide("a", "b"));
    /// let there = Contract::new("Calc").method(divide("x", "y"));
    /// assert_eq!(
    ///     here.difference(&there).unwrap(),
    ///     "method `divide` takes (x: i64, y: i64) there, (a: i64, b: i64) here"
    /// );
    /// ```
    pub fn difference(&self, there: &Contract) -> Option<String> {
        for mine in &self.methods {
            let name = &mine.name;
            let Some(theirs) = there.find(name) else {
                return Some(format!("method `{name}` is not served there"));
            };
            if mine.params != theirs.params {
                return Some(format!(
                    "method `{name}` takes ({}) there, ({}) here",
                    theirs.param_list(),
                    mine.param_list()
                ));
            }
            if mine.returns != theirs.returns {
                return Some(format!(
                    "method `{name}` returns {} there, {} here",
                    theirs.returns, mine.returns
                ));
            }
            // A client retries what it believes idempotent: harmful only when the service
            // does not agree.
            if mine.idempotent && !theirs.idempotent {
                return Some(format!("method `{name}` is idempotent here, not there"));
            }
        }
        None
    }
}

impl Contract {
    /// The contract of a participant that runs the servers with these contracts: the one
    /// contract, or their methods under their names joined with `+`. `None` when it runs no
    /// server, or one without a contract (its methods would be missing).
    pub(crate) fn merged<'a>(
        contracts: impl IntoIterator<Item = Option<&'a Contract>>,
    ) -> Option<Contract> {
        let mut merged: Option<Contract> = None;
        for contract in contracts {
            let contract = contract?;
            merged = Some(match merged {
                None => contract.clone(),
                Some(mut all) => {
                    all.service = format!("{}+{}", all.service, contract.service);
                    all.methods.extend(contract.methods.iter().cloned());
                    all
                }
            });
        }
        merged
    }
}

impl MethodContract {
    /// A method called `name` that takes nothing and returns `()`.
    pub fn new(name: &str) -> MethodContract {
        MethodContract {
            name: name.to_owned(),
            params: Vec::new(),
            returns: "()".to_owned(),
            doc: String::new(),
            idempotent: false,
            fallible: false,
        }
    }

    /// Adds the parameter `name` of type `ty`, after those already there.
    #[must_use = "param returns the method with the parameter added"]
    pub fn param(mut self, name: &str, ty: &str) -> MethodContract {
        self.params.push(Param {
            name: name.to_owned(),
            ty: ty.to_owned(),
        });
        self
    }

    /// Sets the return type, as written (`"Result<i64, DivError>"`).
    #[must_use = "returns gives back the method with its return type set"]
    pub fn returns(mut self, ty: &str) -> MethodContract {
        self.returns = ty.to_owned();
        self
    }

    /// Sets the doc comment (its lines joined with `\n`, each trimmed).
    #[must_use = "doc returns the method with its doc set"]
    pub fn doc(mut self, doc: &str) -> MethodContract {
        self.doc = doc.to_owned();
        self
    }

    /// Marks the method `#[fabric(idempotent)]`: harmless to run twice.
    #[must_use = "idempotent returns the method with the mark set"]
    pub fn idempotent(mut self, idempotent: bool) -> MethodContract {
        self.idempotent = idempotent;
        self
    }

    /// Marks the method as returning `Result<T, E>`: an `Err` comes back as an error reply.
    #[must_use = "fallible returns the method with the mark set"]
    pub fn fallible(mut self, fallible: bool) -> MethodContract {
        self.fallible = fallible;
        self
    }

    /// The method's name on the wire.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its parameters, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Its return type as written; `()` when it returns nothing.
    pub fn return_type(&self) -> &str {
        &self.returns
    }

    /// Its doc comment; empty when it has none.
    pub fn doc_text(&self) -> &str {
        &self.doc
    }

    /// The first paragraph of its doc comment on one line; empty when it has none.
    pub fn summary(&self) -> String {
        let paragraph: Vec<&str> = self
            .doc
            .lines()
            .skip_while(|line| line.is_empty())
            .take_while(|line| !line.is_empty())
            .collect();
        paragraph.join(" ")
    }

    /// Whether it is marked `#[fabric(idempotent)]`.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// Whether it returns `Result<T, E>`.
    pub fn is_fallible(&self) -> bool {
        self.fallible
    }

    /// The parameter called `name`, if the method has one.
    pub fn param_named(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|param| param.name == name)
    }

    /// `x: i64, y: i64`.
    fn param_list(&self) -> String {
        let params: Vec<String> = self.params.iter().map(Param::to_string).collect();
        params.join(", ")
    }
}

impl fmt::Display for MethodContract {
    /// The signature: `divide(x: i64, y: i64) -> Result<i64, DivError>`; ` -> ()` is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name, self.param_list())?;
        if self.returns != "()" {
            write!(f, " -> {}", self.returns)?;
        }
        Ok(())
    }
}

impl Param {
    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its type as written.
    pub fn type_name(&self) -> &str {
        &self.ty
    }
}

impl fmt::Display for Param {
    /// `x: i64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.ty)
    }
}

impl fmt::Display for ContractHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for ContractHash {
    type Err = std::num::ParseIntError;

    /// Reads the 16 hexadecimal digits [`Display`](fmt::Display) writes.
    fn from_str(text: &str) -> Result<ContractHash, Self::Err> {
        u64::from_str_radix(text, 16).map(ContractHash)
    }
}

/// 64-bit FNV-1a: small, with no dependency, and the same everywhere.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(a: &str, b: &str) -> Contract {
        Contract::new("Calc")
            .method(
                MethodContract::new("multiply")
                    .param("x", "i64")
                    .param("y", "i64")
                    .returns("i64")
                    .idempotent(true),
            )
            .method(
                MethodContract::new("divide")
                    .param(a, "i64")
                    .param(b, "i64")
                    .returns("Result<i64, DivError>")
                    .fallible(true)
                    .doc("Divides,\nrefusing zero.\n\nMore."),
            )
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_hash_is_stable_and_ignores_order_docs_and_the_trait_name() {
        let contract = calc("x", "y");
        // Pinned: a change here changes every announced hash.
        assert_eq!(
            contract.canonical(),
            "fabric-contract 1\n\
             divide(x: i64, y: i64) -> Result<i64, DivError>\n\
             multiply(x: i64, y: i64) -> i64 idempotent\n"
        );
        assert_eq!(
            contract.hash().to_string(),
            format!("{:016x}", fnv1a(contract.canonical().as_bytes()))
        );
        let mut reordered = Contract::new("Other");
        for method in contract.methods().iter().rev() {
            reordered = reordered.method(method.clone().doc(""));
        }
        assert_eq!(reordered.hash(), contract.hash());
        assert_ne!(calc("a", "b").hash(), contract.hash());
        let hash = contract.hash();
        assert_eq!(hash.to_string().parse::<ContractHash>().unwrap(), hash);
    }

    #[test]
    fn the_first_difference_is_named() {
        let here = calc("a", "b");
        let there = calc("x", "y");
        assert_eq!(
            here.difference(&there).unwrap(),
            "method `divide` takes (x: i64, y: i64) there, (a: i64, b: i64) here"
        );
        assert_eq!(there.difference(&there), None);
        let fewer = Contract::new("Calc").method(there.methods()[0].clone());
        assert_eq!(fewer.difference(&there), None, "more methods there is fine");
        assert_eq!(
            there.difference(&fewer).unwrap(),
            "method `divide` is not served there"
        );
        let plain = Contract::new("Calc").method(there.methods()[0].clone().idempotent(false));
        assert_eq!(
            plain.difference(&there),
            None,
            "not retrying is always safe"
        );
        assert_eq!(
            there.difference(&plain).unwrap(),
            "method `multiply` is idempotent here, not there"
        );
        let other = Contract::new("Calc").method(there.methods()[0].clone().returns("u8"));
        assert_eq!(
            other.difference(&there).unwrap(),
            "method `multiply` returns i64 there, u8 here"
        );
    }

    #[test]
    fn reads_back_from_json() {
        let contract = calc("x", "y");
        let json = serde_json::to_value(&contract).unwrap();
        assert_eq!(json["methods"][1]["params"][0]["type"], "i64");
        assert_eq!(json["methods"][1]["fallible"], true);
        let back: Contract = serde_json::from_value(json).unwrap();
        assert_eq!(back, contract);
        assert_eq!(back.methods()[1].summary(), "Divides, refusing zero.");
        assert_eq!(
            back.methods()[1].to_string(),
            "divide(x: i64, y: i64) -> Result<i64, DivError>"
        );
        assert_eq!(MethodContract::new("reset").to_string(), "reset()");
    }
}
