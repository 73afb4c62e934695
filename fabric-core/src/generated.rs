//! What the code `#[fabric_service]` generates calls, under paths that do not depend on the
//! user's imports. Not public API: it changes without notice.

use std::fmt::{Debug, Display};

pub use serde;

pub use crate::rpc::decode_args;

/// Fails to compile, in fabric's words, unless `T` can cross the wire.
pub const fn assert_wire<T: crate::Wire>() {}

/// The message of a service's own error, for people: its `Display` if it has one, else its
/// `Debug`, else its JSON. Generated code picks the first that the concrete type has, by
/// autoref specialization: it calls `(&&&Render(&error)).fabric_message()` with the three
/// traits below in scope, and method lookup tries `&&Render` (Display), then `&Render`
/// (Debug), then `Render` (Serialize).
#[allow(missing_debug_implementations)]
pub struct Render<'a, T: ?Sized>(pub &'a T);

/// The message of a type that has `Display`.
pub trait ViaDisplay {
    /// The message.
    fn fabric_message(&self) -> String;
}

impl<T: Display + ?Sized> ViaDisplay for &&Render<'_, T> {
    fn fabric_message(&self) -> String {
        self.0.to_string()
    }
}

/// The message of a type that has `Debug` but not `Display`.
pub trait ViaDebug {
    /// The message.
    fn fabric_message(&self) -> String;
}

impl<T: Debug + ?Sized> ViaDebug for &Render<'_, T> {
    fn fabric_message(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// The message of a type that has neither: its JSON.
pub trait ViaSerialize {
    /// The message.
    fn fabric_message(&self) -> String;
}

impl<T: serde::Serialize + ?Sized> ViaSerialize for Render<'_, T> {
    fn fabric_message(&self) -> String {
        serde_json::to_string(self.0)
            .unwrap_or_else(|e| format!("(an error that cannot be shown: {e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize)]
    struct Shown;

    impl Display for Shown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("shown by Display")
        }
    }

    #[derive(Debug, serde::Serialize)]
    enum Debugged {
        Overflow,
    }

    #[derive(serde::Serialize)]
    struct Bare {
        code: u32,
    }

    #[test]
    // The borrows are the point: autoref specialization picks the impl by them.
    #[allow(clippy::needless_borrow)]
    fn the_best_rendering_is_chosen() {
        assert_eq!((&&&Render(&Shown)).fabric_message(), "shown by Display");
        assert_eq!(
            (&&&Render(&Debugged::Overflow)).fabric_message(),
            "Overflow"
        );
        assert_eq!(
            (&&&Render(&Bare { code: 7 })).fabric_message(),
            r#"{"code":7}"#
        );
    }
}
