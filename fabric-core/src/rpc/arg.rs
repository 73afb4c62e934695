//! What a generated client's method takes for an argument: the declared type, or a borrowed
//! form of it that encodes the same, so that a caller need not clone or copy to call.

use serde::{Serialize, Serializer};

use crate::bytes::Bytes;

/// A value that a generated client's method takes for an argument declared as `T`: the `T`
/// itself, a `&T`, or a borrowed form of `T` that encodes exactly as the `T` would.
///
/// `#[fabric_service]` gives every argument of the trait that is not a primitive scalar the
/// type `impl Arg<T>` in the client method, so a caller keeps its value and lends it:
///
/// | declared as | the client method also takes |
/// | --- | --- |
/// | any `T` | `&T` |
/// | `String` | `&str` |
/// | `Vec<T>` | `&[T]`, `&[T; N]` |
/// | [`Bytes`] | `Vec<u8>`, `&Vec<u8>`, `&[u8]`, `&[u8; N]` |
///
/// Arguments of the primitive scalar types (`i8` to `i128`, `u8` to `u128`, `isize`,
/// `usize`, `f32`, `f64`, `bool`, `char`) are taken by value as declared: lending them saves
/// nothing, and so an expression whose type only the parameter gives (`5`, `x.into()`,
/// `Default::default()`) still has one.
///
/// ```
/// use fabric_core::{fabric_service, Bytes};
///
/// #[fabric_service]
/// pub trait Store {
///     fn put(&self, key: String, value: Bytes, tags: Vec<String>, ttl_s: u32);
/// }
///
/// fn save(store: &StoreClient, key: &str, value: &Bytes, tags: &[String]) -> fabric_core::Result<()> {
///     store.put(key, value, tags, 60)                   // borrowed: nothing is cloned
/// }
///
/// fn save_owned(store: &StoreClient, value: Bytes) -> fabric_core::Result<()> {
///     store.put("k".to_owned(), value, vec![], 60)     // owned values, as declared
/// }
/// ```
///
/// The encoded call is the same whichever form is passed, in both codecs, so peers (a Python
/// one too) cannot tell them apart. A form is encoded straight into the call's body: nothing
/// is copied on the way but the bytes into the body.
///
/// Since the client method is generic over the form, an argument expression whose type only
/// the parameter can give needs a type of its own: `name.into()` (write `name`, or
/// `String::from(name)`), `iter.collect()` (write `collect::<Vec<_>>()`), or
/// `Default::default()`.
///
/// # Implementing it
///
/// For a view of your own (a borrowed form of an argument type), [`wire`](Arg::wire) must
/// return something that serializes exactly as the `T` would, in every serde format: the
/// server decodes a `T` from it, bincode and JSON alike. `T` and `&T` are taken for every
/// serializable `T` already.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed for an argument declared as `{T}`",
    label = "expected a `{T}`, a `&{T}` or a borrowed form of it",
    note = "a client method takes each argument as the trait declares it, by reference, or in a borrowed form that encodes the same (`&str` for `String`, `&[T]` for `Vec<T>`, `&[u8]` for `Bytes`); see `fabric_core::Arg`"
)]
pub trait Arg<T> {
    /// What is encoded in place of the `T`: it serializes exactly as the `T` would.
    fn wire(&self) -> impl Serialize + '_;
}

impl<T: Serialize> Arg<T> for T {
    fn wire(&self) -> impl Serialize + '_ {
        self
    }
}

impl<T: Serialize> Arg<T> for &T {
    fn wire(&self) -> impl Serialize + '_ {
        *self
    }
}

/// serde writes `str` and `String` alike.
impl Arg<String> for &str {
    fn wire(&self) -> impl Serialize + '_ {
        *self
    }
}

/// serde writes `[T]` and `Vec<T>` alike, as a sequence with its length.
impl<T: Serialize> Arg<Vec<T>> for &[T] {
    fn wire(&self) -> impl Serialize + '_ {
        *self
    }
}

/// As a slice: serde writes an array `[T; N]` as a tuple, without its length.
impl<T: Serialize, const N: usize> Arg<Vec<T>> for &[T; N] {
    fn wire(&self) -> impl Serialize + '_ {
        &self[..]
    }
}

impl Arg<Bytes> for &[u8] {
    fn wire(&self) -> impl Serialize + '_ {
        ByteSlice(self)
    }
}

impl<const N: usize> Arg<Bytes> for &[u8; N] {
    fn wire(&self) -> impl Serialize + '_ {
        ByteSlice(&self[..])
    }
}

impl Arg<Bytes> for Vec<u8> {
    fn wire(&self) -> impl Serialize + '_ {
        ByteSlice(self)
    }
}

impl Arg<Bytes> for &Vec<u8> {
    fn wire(&self) -> impl Serialize + '_ {
        ByteSlice(self)
    }
}

/// Bytes written as [`Bytes`] writes them: as one block, not byte by byte.
struct ByteSlice<'a>(&'a [u8]);

impl Serialize for ByteSlice<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    /// `form` encodes as `owned` in both codecs.
    fn same<T: Serialize>(owned: T, form: impl Arg<T>) {
        for codec in [Codec::Bincode, Codec::Json] {
            assert_eq!(
                codec.encode(&form.wire(), "the form").unwrap(),
                codec.encode(&owned, "the value").unwrap(),
                "{codec:?}"
            );
        }
    }

    #[test]
    // The borrows are the point: each form must encode as the owned value.
    #[allow(clippy::needless_borrows_for_generic_args)]
    fn every_form_encodes_as_its_type() {
        same(7i64, 7);
        same(7i64, &7);
        same("text".to_owned(), "text");
        same("text".to_owned(), &"text".to_owned());
        same(vec![1u32, 2, 3], &[1, 2, 3][..]);
        same(vec![1u32, 2, 3], &[1, 2, 3]);
        same(vec!["a".to_owned()], &vec!["a".to_owned()]);
        let bytes: Vec<u8> = (0..=255).collect();
        same(Bytes(bytes.clone()), &bytes[..]);
        same(Bytes(bytes.clone()), &bytes);
        same(Bytes(vec![1, 2, 3]), &[1, 2, 3]);
        same(Bytes(bytes.clone()), &Bytes(bytes.clone()));
        same(Bytes(bytes.clone()), bytes);
        same(Some("text".to_owned()), Some("text".to_owned()));
    }
}
