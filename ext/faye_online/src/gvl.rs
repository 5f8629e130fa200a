//! Running Rust work with Ruby's global lock released, so that other Ruby
//! threads (the EventMachine reactor above all) run while it waits on
//! Redis or SQL.

use crate::errors::store_error;
use magnus::{Error, Ruby};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f` without the GVL. `f` must not touch Ruby objects; a panic in
/// it comes back as `Err`.
pub fn without_gvl<R, F: FnOnce() -> R>(f: F) -> Result<R, String> {
    struct Call<F, R> {
        f: Option<F>,
        result: Option<std::thread::Result<R>>,
    }
    unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(
        data: *mut std::ffi::c_void,
    ) -> *mut std::ffi::c_void {
        // SAFETY: `data` is the `Call` below, alive for this whole call.
        let call = unsafe { &mut *(data as *mut Call<F, R>) };
        if let Some(f) = call.f.take() {
            call.result = Some(catch_unwind(AssertUnwindSafe(f)));
        }
        std::ptr::null_mut()
    }
    let mut call = Call {
        f: Some(f),
        result: None,
    };
    // SAFETY: the trampoline only runs the Rust closure, which touches no
    // Ruby object; Ruby calls it once, on this thread, before returning.
    unsafe {
        rb_sys::rb_thread_call_without_gvl(
            Some(trampoline::<F, R>),
            &mut call as *mut Call<F, R> as *mut std::ffi::c_void,
            None,
            std::ptr::null_mut(),
        );
    }
    match call.result {
        Some(Ok(r)) => Ok(r),
        _ => Err("faye-online: a query failed unexpectedly".to_string()),
    }
}

/// Runs a store query without the GVL; its error becomes a StoreError.
pub fn query<T, E: std::fmt::Display>(
    ruby: &Ruby,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, Error> {
    match without_gvl(|| f().map_err(|e| e.to_string())) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) | Err(e) => Err(store_error(ruby, e)),
    }
}
