//! `Postcard<T>`: stores a serde type in redb as postcard bytes.
//!
//! Stored encodings are part of the on-disk format: never change a stored struct in place —
//! add a `*_v2` table and migrate (redb records each table's value type name and refuses a
//! mismatch on open), and raise `layout::LAYOUT` (as for a new variant of a stored enum,
//! which the build before cannot decode). A test fails until both are done ("What a layout
//! pins" in `layout.rs`).

use std::fmt::Debug;
use std::marker::PhantomData;

use redb::{TypeName, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A redb value encoded with postcard.
#[derive(Debug)]
pub struct Postcard<T>(PhantomData<T>);

impl<T: Debug + Serialize + DeserializeOwned> Value for Postcard<T> {
    type SelfType<'a>
        = T
    where
        Self: 'a;
    type AsBytes<'a>
        = Vec<u8>
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> T
    where
        Self: 'a,
    {
        // Invariant: redb's `Value::from_bytes` cannot fail, and a record that does not decode
        // can only come from a build with another layout under the same table name, which
        // versioned table names rule out (redb checksums catch corruption first). Guessing a
        // value here could re-deliver a file, so stopping is the safe answer.
        #[allow(clippy::expect_used)]
        postcard::from_bytes(data).expect("ledger record written by an incompatible wharf version")
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a T) -> Vec<u8>
    where
        Self: 'b,
    {
        // Invariant: postcard serialisation into a Vec fails only for types serde cannot
        // describe (maps with non-string keys are fine); our record types are plain structs.
        postcard::to_allocvec(value).unwrap_or_default()
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("wharf::postcard<{}>", std::any::type_name::<T>().rsplit("::").next().unwrap_or("?")))
    }
}
