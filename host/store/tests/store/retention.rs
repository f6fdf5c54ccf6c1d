use netra_store::{RunStatus, Store};

use crate::{append_sync, at, ended, event, new_run, open, thread_and_run};

#[test]
fn prune_deletes_only_old_ended_runs_events_in_bounded_steps() {
    let (_dir, _path, store) = open();
    // run_old1 and run_old2 ended before the cutoff, run_new after it,
    // run_live is still running.
    thread_and_run(&store, "thr_1", "run_old1", "alice");
    for id in ["run_old2", "run_new", "run_live"] {
        store.create_run(&new_run(id, "thr_1", "alice")).unwrap();
    }
    for id in ["run_old1", "run_old2", "run_new", "run_live"] {
        for seq in 1..=10 {
            append_sync(&store, event(id, seq)).unwrap();
        }
    }
    store
        .finish_run("run_old1", &ended(RunStatus::Completed, 10_000))
        .unwrap();
    store
        .finish_run("run_old2", &ended(RunStatus::Failed, 20_000))
        .unwrap();
    store
        .finish_run("run_new", &ended(RunStatus::Completed, 40_000))
        .unwrap();
    let cutoff = at(30_000);
    let count = |id: &str| store.events_after(id, 0, usize::MAX).unwrap().len();

    // Each call deletes at most max_rows, oldest run first, from its start.
    assert_eq!(store.prune_events(cutoff, 7).unwrap(), 7);
    assert_eq!((count("run_old1"), count("run_old2")), (3, 10));
    assert_eq!(
        store.events_after("run_old1", 0, 1).unwrap()[0],
        *crate::frame("run_old1", 8)
    );
    assert_eq!(store.prune_events(cutoff, 7).unwrap(), 7);
    assert_eq!((count("run_old1"), count("run_old2")), (0, 6));
    assert_eq!(store.prune_events(cutoff, 7).unwrap(), 6);
    assert_eq!(store.prune_events(cutoff, 7).unwrap(), 0);
    assert_eq!((count("run_old1"), count("run_old2")), (0, 0));
    assert_eq!((count("run_new"), count("run_live")), (10, 10));
    assert!(store.run("run_old2").unwrap().unwrap().events_pruned);
    assert!(!store.run("run_new").unwrap().unwrap().events_pruned);

    // A later cutoff reaches run_new; a running run is never touched.
    assert_eq!(store.prune_events(at(50_000), 100).unwrap(), 10);
    assert_eq!(store.prune_events(at(u64::MAX / 4), 100).unwrap(), 0);
    assert_eq!(count("run_live"), 10);
    assert_eq!(store.prune_events(at(50_000), 0).unwrap(), 0);
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
}
