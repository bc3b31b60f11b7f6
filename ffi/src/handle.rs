//! Opaque handles and who owns them.
//!
//! C sees each handle as an incomplete struct (`tc_cache`, `tc_cache_options`). On the
//! Rust side a zero-sized marker type stands for it, and [`Castable`] ties the marker
//! to the Rust value behind the pointer and to how that value is owned: in an `Arc`
//! ([`OwnershipArc`]) or a `Box` ([`OwnershipBox`]). Every conversion between a C
//! pointer and a Rust value goes through the functions here, so there are no bare
//! `as` casts elsewhere and a handle can't be freed the wrong way.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::result::Failure;

/// The value behind the pointer lives in an `Arc` (`Arc::into_raw`).
pub(crate) struct OwnershipArc;

/// The value behind the pointer lives in a `Box` (`Box::into_raw`).
pub(crate) struct OwnershipBox;

/// Ties an opaque C handle type to the Rust value it points to and to how that value
/// is owned. A type implements it once, so it has exactly one ownership.
pub(crate) trait Castable {
    /// [`OwnershipArc`] or [`OwnershipBox`].
    type Ownership;
    /// The Rust value a `*const Self` points to.
    type RustType;
}

fn cast_const<C: Castable>(ptr: *const C) -> *const C::RustType {
    ptr.cast()
}

fn cast_mut<C: Castable>(ptr: *mut C) -> *mut C::RustType {
    ptr.cast()
}

/// Moves `value` into a new `Arc` and hands out the pointer C will hold.
pub(crate) fn to_arc_const_ptr<C: Castable<Ownership = OwnershipArc>>(value: C::RustType) -> *const C {
    Arc::into_raw(Arc::new(value)).cast()
}

/// Drops the `Arc` reference C held. NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or came from [`to_arc_const_ptr`] for `C` and is not used again.
pub(crate) unsafe fn free_arc<C: Castable<Ownership = OwnershipArc>>(ptr: *const C) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the caller guarantees `ptr` came from `Arc::into_raw` of this type and
    // gives its reference back exactly once.
    drop(unsafe { Arc::from_raw(cast_const(ptr)) });
}

/// A new `Arc` reference to the value behind an `Arc` handle, for a Rust value that
/// keeps it alive beyond the call (C's reference is left as it was).
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C` (from [`to_arc_const_ptr`]).
pub(crate) unsafe fn clone_arc<C: Castable<Ownership = OwnershipArc>>(
    ptr: *const C,
    name: &str,
) -> Result<Arc<C::RustType>, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    let raw = cast_const(ptr);
    // SAFETY: the caller guarantees `raw` came from `Arc::into_raw` and C's reference is
    // live, so adding one and taking it back as an `Arc` leaves C's intact.
    unsafe {
        Arc::increment_strong_count(raw);
        Ok(Arc::from_raw(raw))
    }
}

/// Takes over the `Arc` reference C held, as [`free_arc`] does, but hands it to the
/// caller to consume. NULL gives `None`.
///
/// # Safety
/// `ptr` is NULL or came from [`to_arc_const_ptr`] for `C` and is not used again.
pub(crate) unsafe fn take_arc<C: Castable<Ownership = OwnershipArc>>(ptr: *const C) -> Option<Arc<C::RustType>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `ptr` came from `Arc::into_raw` of this type and
    // gives its reference up here.
    Some(unsafe { Arc::from_raw(cast_const(ptr)) })
}

/// Moves `value` into a new `Box` and hands out the pointer C will hold.
pub(crate) fn to_boxed_mut_ptr<C: Castable<Ownership = OwnershipBox>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Drops the `Box` C held. NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or came from [`to_boxed_mut_ptr`] for `C` and is not used again.
pub(crate) unsafe fn free_box<C: Castable<Ownership = OwnershipBox>>(ptr: *mut C) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the caller guarantees `ptr` came from `Box::into_raw` of this type and
    // is freed exactly once.
    drop(unsafe { Box::from_raw(cast_mut(ptr)) });
}

/// Borrows the value behind a handle of either ownership.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C` that outlives `'a`.
pub(crate) unsafe fn try_from<'a, C: Castable>(ptr: *const C, name: &str) -> Result<&'a C::RustType, Failure> {
    // SAFETY: non-NULL handles point to a live `C::RustType` (the caller's promise).
    unsafe { cast_const(ptr).as_ref() }.ok_or_else(|| Failure::null(name))
}

/// Mutably borrows the value behind a boxed handle.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C`, used by no one else during `'a`.
pub(crate) unsafe fn try_from_mut<'a, C: Castable<Ownership = OwnershipBox>>(
    ptr: *mut C,
    name: &str,
) -> Result<&'a mut C::RustType, Failure> {
    // SAFETY: non-NULL handles point to a live, exclusively used `C::RustType`.
    unsafe { cast_mut(ptr).as_mut() }.ok_or_else(|| Failure::null(name))
}

/// A checked out-parameter: not NULL, written at most once, and only on success.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// # Safety
    /// `ptr` is NULL or valid and aligned for a write of `T` (it may be uninitialized).
    pub(crate) unsafe fn new(ptr: *mut T, name: &str) -> Result<Self, Failure> {
        NonNull::new(ptr).map(Out).ok_or_else(|| Failure::null(name))
    }

    /// Writes the result. Takes `self`, so a result is written once.
    pub(crate) fn write(self, value: T) {
        // SAFETY: `new` checked the pointer is not NULL and its caller promised it is
        // valid for writes; `write` does not read or drop the old (maybe garbage) value.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Borrows the value behind a handle, or returns `TC_RESULT_NULL_PARAMETER`.
macro_rules! try_ref_from_ptr {
    ($var:ident) => {
        // SAFETY: every exported function documents that its handle arguments are
        // NULL or live handles of their type.
        $crate::result::try_result!(unsafe { $crate::handle::try_from($var, stringify!($var)) })
    };
}
pub(crate) use try_ref_from_ptr;

/// Mutably borrows the value behind a boxed handle, or returns `TC_RESULT_NULL_PARAMETER`.
macro_rules! try_mut_from_ptr {
    ($var:ident) => {
        // SAFETY: every exported function documents that its handle arguments are
        // NULL or live handles of their type, not in use by another thread.
        $crate::result::try_result!(unsafe { $crate::handle::try_from_mut($var, stringify!($var)) })
    };
}
pub(crate) use try_mut_from_ptr;

/// A new `Arc` reference to the value behind a handle, or returns
/// `TC_RESULT_NULL_PARAMETER`.
macro_rules! try_clone_arc {
    ($var:ident) => {
        // SAFETY: every exported function documents that its handle arguments are
        // NULL or live handles of their type.
        $crate::result::try_result!(unsafe { $crate::handle::clone_arc($var, stringify!($var)) })
    };
}
pub(crate) use try_clone_arc;

/// Checks an out-parameter, or returns `TC_RESULT_NULL_PARAMETER`.
macro_rules! try_out {
    ($var:ident) => {
        // SAFETY: every exported function documents that its out-parameters are NULL
        // or valid for a write of their type.
        $crate::result::try_result!(unsafe { $crate::handle::Out::new($var, stringify!($var)) })
    };
}
pub(crate) use try_out;
