//! One conformance suite, run against every engine: each case in `cases` is instantiated once per
//! engine by `conformance!`, so a failure names both the case and the engine.

mod cases;

/// A fresh, empty database of one engine in its own temporary directory.
#[derive(Debug)]
pub struct Harness {
    /// The engine under test, so that a case can name it in a failure or open it bare.
    pub kind: store::EngineKind,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new(kind: store::EngineKind) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Harness { kind, dir }
    }

    /// Where the database lives: a file for redb, a directory for sled.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("db").join(self.kind.name())
    }

    /// A [`store::Store`] with its committer over this database, as a process opens it.
    pub fn open(&self) -> store::Store {
        store::Store::open(self.kind, &self.path()).expect("open the store")
    }

    /// The bare engine, without a Store and its committer.
    pub fn open_engine(&self) -> Box<dyn store::Engine> {
        match self.kind {
            store::EngineKind::Redb => Box::new(store::RedbEngine::open(&self.path()).unwrap()),
            store::EngineKind::Sled => Box::new(store::SledEngine::open(&self.path()).unwrap()),
        }
    }
}

macro_rules! conformance {
    ($engine:ident, $kind:expr, async: [$($async_case:ident),* $(,)?], sync: [$($case:ident),* $(,)?]) => {
        mod $engine {
            use super::{cases, Harness};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $async_case() {
                    cases::$async_case(Harness::new($kind)).await;
                }
            )*
            $(
                #[test]
                fn $case() {
                    cases::$case(Harness::new($kind));
                }
            )*
        }
    };
}

macro_rules! all_cases {
    ($engine:ident, $kind:expr) => {
        conformance!(
            $engine,
            $kind,
            async: [
                get_put_delete,
                batch_ops_apply_in_order,
                readers_never_see_part_of_a_batch,
                prefix_scan_matches_an_ordered_model,
                scan_range_pages_with_limit,
                last_with_prefix_is_the_sequence_head,
                concurrent_committers_all_land,
                reopen_after_drop_keeps_everything,
                second_open_while_open_is_a_clear_error,
                large_values_and_binary_keys_round_trip,
                new_writes_read_over_the_database_as_one,
            ],
            sync: [
                engine_write_applies_batches_in_order,
                commit_blocking_from_a_plain_thread,
                unusable_path_is_a_clear_error,
            ]
        );
    };
}

all_cases!(redb, store::EngineKind::Redb);
all_cases!(sled, store::EngineKind::Sled);
