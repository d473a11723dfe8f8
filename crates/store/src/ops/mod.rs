//! The store's operations, written once over [`crate::sql::Conn`]: writes as methods of the writer's
//! context, reads as functions of a connection.

pub mod audit;
pub mod bindings;
pub mod checklog;
pub mod events;
pub mod holder;
pub mod jobs;
pub mod kyc;
pub mod participants;
pub mod webhooks;

/// `f` over `items` in one part per core (one part when they are few: a thread costs more than
/// hashing a few thousand items), the parts' results in order.
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < 8_192 {
        return vec![f(items)];
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(items.len().div_ceil(threads)).map(|part| s.spawn(move || f(part))).collect();
        handles.into_iter().map(|h| h.join().expect("a worker thread does not panic")).collect()
    })
}
