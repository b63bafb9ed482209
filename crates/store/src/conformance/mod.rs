//! The backend-independent conformance suite: every behaviour a [`Store`] promises, written once
//! against the trait so each backend runs the same checks. A backend's test file invokes
//! [`conformance_tests!`](crate::conformance_tests) with an async constructor returning the store
//! and a guard (e.g. its temporary directory) kept alive for the test; the macro expands to one
//! `#[tokio::test]` per behaviour. Compiled for this crate's tests and, for other crates' tests,
//! under the `conformance` feature. It does not measure performance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use std::sync::Arc;

use claimdb_model::json::decode_document;
use claimdb_model::{CollectionPath, DocPath, FieldPath, Map, Timestamp, Transform, Value};
use serde_json::json;

use crate::query::limits;
use crate::{
    Cursor, Direction, Document, Filter, Op, Order, PageRequest, Precondition, Query, Scope, Store,
    StoreError, Write, WriteOp,
};

mod children;
mod differential;
mod feed;
mod or;
mod paging;
mod past;
mod queries;
mod records;
mod writes;

pub use children::*;
pub use differential::*;
pub use feed::*;
pub use or::*;
pub use paging::*;
pub use past::*;
pub use queries::*;
pub use records::*;
pub use writes::*;

/// Expands to one `#[tokio::test]` per conformance behaviour. `$make` is a callable returning a
/// future of `(store, guard)`; the guard lives until the test ends. With `skippable $make`, the
/// future yields an `Option` of that pair and `None` skips the test. The calling crate needs
/// `tokio` (with `macros` and `rt-multi-thread`) as a dependency.
#[macro_export]
macro_rules! conformance_tests {
    // `$make` returns `Option<(store, guard)>`; `None` skips every test (the constructor says
    // why, loudly): for backends that need a server that may be absent on a developer's machine.
    (skippable $make:expr) => {
        $crate::conformance_tests!(@list $make; |made| made);
    };
    ($make:expr) => {
        $crate::conformance_tests!(@list $make; |made| ::std::option::Option::Some(made));
    };
    (@list $make:expr; $wrap:expr) => {
        $crate::conformance_tests!(@each $make; $wrap;
            crud_round_trip,
            get_many_reads_in_order,
            create_on_existing_fails,
            update_on_missing_fails,
            delete_missing_succeeds,
            preconditions_are_enforced,
            every_transform_applies_at_commit_time,
            dotted_update_paths_merge,
            failing_write_leaves_batch_unapplied,
            failing_write_is_named_by_index,
            batch_of_500_commits_and_501_is_refused,
            versions_and_commit_times_strictly_increase,
            writes_to_one_document_apply_in_order,
            equality_filters_compare_numbers_by_value,
            range_filters_are_type_bounded,
            not_equal_and_not_in_exclude_missing_fields,
            array_contains_filters,
            invalid_queries_are_refused,
            index_follows_updates_and_deletes,
            multi_field_order_with_descending,
            implicit_order_follows_inequality_then_name,
            cursors_in_all_four_forms,
            cursor_mismatch_is_refused,
            limit_and_offset,
            collection_group_queries,
            mixed_types_follow_the_total_order,
            name_filters_and_order,
            list_pages_through_a_collection,
            scan_and_restore_round_trip,
            concurrent_version_writers_have_one_winner,
            oversized_documents_are_refused,
            every_value_type_round_trips,
            nested_field_filters_and_order,
            equality_with_inequality_and_cursor,
            operand_list_limits_are_inclusive,
            group_name_order_descending_below_a_document,
            equality_pages_in_name_order,
            planned_queries_agree_with_brute_force,
            query_pages_continue_where_they_stopped,
            work_bound_ends_pages_early_and_they_continue,
            lookups_over_the_work_bound_scan_in_order,
            long_runs_of_equal_values_page_without_rereading,
            unsortable_runs_over_the_work_bound_are_refused,
            positions_that_do_not_fit_are_refused,
            query_limits_are_enforced,
            or_queries_return_each_match_once_in_order,
            or_queries_in_collection_groups,
            or_queries_page_through_lookups_and_scans,
            or_query_limits_are_enforced,
            or_queries_equal_the_union_of_their_branches,
            collection_ids_below_a_parent,
            lists_show_missing_documents,
            close_stops_writes,
            records_round_trip_and_conditions,
            records_list_and_scan_in_key_order,
            take_record_is_single_use,
            read_checks_guard_commits,
            feed_announces_commits_in_order,
            failed_commits_are_not_announced,
            a_lagging_subscriber_is_told_and_goes_on,
            reads_at_past_times_see_each_version,
            past_reads_refuse_future_times_and_times_before_the_history,
            concurrent_versions_are_each_kept,
            a_commit_writing_a_document_twice_keeps_one_version,
            queries_at_past_times_match_the_documents_then,
            listings_at_past_times,
        );
    };
    (@each $make:expr; $wrap:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = ($wrap)(($make)().await) else {
                    return;
                };
                $crate::conformance::$name(::std::sync::Arc::new(store)).await;
            }
        )*
    };
}

fn path(p: &str) -> DocPath {
    DocPath::parse(p).unwrap()
}

fn coll(p: &str) -> CollectionPath {
    CollectionPath::parse(p).unwrap()
}

fn data(j: serde_json::Value) -> Map {
    decode_document(&j).unwrap()
}

fn val(j: serde_json::Value) -> Value {
    claimdb_model::json::decode_value(&j).unwrap()
}

fn fp(f: &str) -> FieldPath {
    FieldPath::parse(f).unwrap()
}

fn set(p: &str, j: serde_json::Value) -> Write {
    Write::new(
        path(p),
        WriteOp::Set {
            data: data(j),
            transforms: vec![],
        },
    )
}

fn create(p: &str, j: serde_json::Value) -> Write {
    Write::new(
        path(p),
        WriteOp::Create {
            data: data(j),
            transforms: vec![],
        },
    )
}

fn update(p: &str, fields: &[(&str, serde_json::Value)]) -> Write {
    Write::new(
        path(p),
        WriteOp::Update {
            fields: fields
                .iter()
                .map(|(f, v)| (fp(f), val(v.clone())))
                .collect(),
            transforms: vec![],
        },
    )
}

fn delete(p: &str) -> Write {
    Write::new(path(p), WriteOp::Delete)
}

async fn put<S: Store>(store: &S, docs: &[(&str, serde_json::Value)]) {
    let writes: Vec<Write> = docs.iter().map(|(p, j)| set(p, j.clone())).collect();
    store.commit(writes.into()).await.unwrap();
}

fn query(c: &str) -> Query {
    Query::collection(coll(c))
}

fn filter(field: &str, op: &str, value: serde_json::Value) -> Filter {
    Filter {
        field: fp(field),
        op: Op::parse(op).unwrap(),
        value: val(value),
    }
}

fn order(field: &str, direction: Direction) -> Order {
    Order {
        field: fp(field),
        direction,
    }
}

fn ids(docs: &[Document]) -> Vec<&str> {
    docs.iter().map(|d| d.path.id()).collect()
}

/// Every document of a query's result, following its pages.
async fn run<S: Store + ?Sized>(store: &S, q: &Query) -> Result<Vec<Document>, StoreError> {
    let mut page = PageRequest::first(limits::MAX_PAGE_SIZE);
    let mut out = Vec::new();
    loop {
        let got = store.query(q, &page).await?;
        out.extend(got.documents);
        match got.next {
            Some(next) => page.resume = Some(next),
            None => return Ok(out),
        }
    }
}

async fn ids_of<S: Store>(store: &S, q: &Query) -> Vec<String> {
    let docs = run(store, q).await.unwrap();
    ids(&docs).into_iter().map(String::from).collect()
}

async fn with_filters<S: Store>(store: &S, c: &str, filters: Vec<Filter>) -> Vec<String> {
    let mut q = query(c);
    q.filters = filters;
    ids_of(store, &q).await
}

fn assert_invalid(result: Result<impl std::fmt::Debug, StoreError>, needle: &str) {
    match result {
        Err(StoreError::InvalidArgument(m)) => {
            assert!(
                m.contains(needle),
                "message {m:?} should mention {needle:?}"
            )
        }
        other => panic!("expected InvalidArgument mentioning {needle:?}, got {other:?}"),
    }
}
