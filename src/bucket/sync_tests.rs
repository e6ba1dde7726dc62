//! Rounds against an in-memory store: what goes up, in which state, what is skipped over
//! the budget, and what is deleted when.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::ObjectStoreExt;

use super::*;
use crate::codec::aac::AacConfig;
use crate::config::Config;
use crate::hub::rendition::{Rendition, TrackOutput};
use crate::hub::{Holder, Hub};
use crate::media::CodecConfig;
use crate::store::{StoredPart, StoredSegment};

fn config(queue_bytes: usize) -> Config {
    let mut c = Config::default();
    c.outputs.hls_ts = false;
    c.outputs.dash = false;
    c.segment.window = 2;
    c.object_store.enabled = true;
    c.object_store.bucket = "b".into();
    c.object_store.queue_bytes = queue_bytes;
    c
}

/// Stores audio segment `seq` (2 s, 100 bytes) in `r`, with init version 7.
fn add_segment(r: &Rendition, seq: u64) {
    let mut w = r.write();
    let track = w.audio.get_or_insert_with(|| TrackOutput {
        config: CodecConfig::Aac(AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap()),
        init_version: 7,
        window: TrackWindow::new(2),
    });
    track.window.add_init(7, Bytes::from_static(b"init"));
    track.window.push(StoredSegment {
        seq,
        start: seq as i64 * 2000,
        duration: 2000,
        timescale: 1000,
        wall_clock: SystemTime::UNIX_EPOCH,
        init_version: 7,
        discontinuity: false,
        parts: vec![StoredPart {
            id: seq,
            duration: 2000,
            independent: true,
            data: Bytes::from(vec![seq as u8; 100]),
        }],
    });
}

struct Fixture {
    sync: LadderSync,
    rendition: Arc<Rendition>,
    store: Arc<InMemory>,
    _granted: crate::hub::Granted,
}

fn fixture(queue_bytes: usize) -> Fixture {
    let config = config(queue_bytes);
    let store = Arc::new(InMemory::new());
    let client = Client::with_store(store.clone(), &config.object_store);
    let hub = Hub::new(Arc::new(config));
    let granted = hub.publish("live", "show", Holder::open(1)).unwrap();
    let ladder = granted.publisher.ladder().clone();
    let rendition = granted.publisher.rendition().clone();
    let shared = Arc::new(Shared {
        hub,
        client,
        prefix: "p".into(),
        delete: DeletePolicy::Window,
    });
    let sync = LadderSync {
        keys: Keys::new("p", "live", "show"),
        shared,
        ladder,
        feeds: HashMap::new(),
        sent: HashMap::new(),
        doomed: Vec::new(),
    };
    Fixture {
        sync,
        rendition,
        store,
        _granted: granted,
    }
}

async fn text(store: &InMemory, key: &str) -> Option<String> {
    let got = store.get(&Path::from(key)).await.ok()?;
    Some(String::from_utf8_lossy(&got.bytes().await.ok()?).into_owned())
}

#[tokio::test]
async fn objects_then_playlists_then_master_and_the_window_is_kept() {
    let mut f = fixture(1 << 20);
    add_segment(&f.rendition, 10);
    assert!(f.sync.round().await);
    let playlist = text(&f.store, "p/live/show/src/audio.m3u8").await.unwrap();
    assert!(
        playlist.contains("audio/10.m4s") && !playlist.contains("PART"),
        "{playlist}"
    );
    for key in [
        "p/live/show/src/audio/init-7.mp4",
        "p/live/show/src/audio/10.m4s",
        "p/live/show/audio/10.m4s",
        "p/live/show/audio.m3u8",
    ] {
        assert!(text(&f.store, key).await.is_some(), "{key} missing");
    }
    let master = text(&f.store, "p/live/show/index.m3u8").await.unwrap();
    assert!(master.contains("src/audio.m3u8"), "{master}");

    // 10 leaves the 2-segment window: deleted after its duration plus the playlist's
    // (2 + 4 s), not before; 11 came and went between two rounds, never uploaded.
    for seq in 11..=13 {
        add_segment(&f.rendition, seq);
    }
    assert!(f.sync.round().await);
    f.sync.delete_due().await;
    assert!(text(&f.store, "p/live/show/src/audio/10.m4s")
        .await
        .is_some());
    let soonest = Instant::now() + Duration::from_secs(6) - Duration::from_millis(100);
    assert_eq!(f.sync.doomed.len(), 2, "10, in both audio directories");
    for (at, key) in &mut f.sync.doomed {
        assert!(*at >= soonest, "{key} doomed too soon");
        *at = Instant::now();
    }
    f.sync.delete_due().await;
    for gone in ["src/audio/10.m4s", "src/audio/11.m4s", "audio/10.m4s"] {
        let key = format!("p/live/show/{gone}");
        assert!(text(&f.store, &key).await.is_none(), "{key} still there");
    }
    assert!(text(&f.store, "p/live/show/src/audio/13.m4s")
        .await
        .is_some());
    assert!(text(&f.store, "p/live/show/src/audio/init-7.mp4")
        .await
        .is_some());
}

#[tokio::test]
async fn over_the_budget_segments_are_skipped_not_held() {
    // Room for the init segments, not for a 100-byte segment.
    let mut f = fixture(50);
    add_segment(&f.rendition, 1);
    assert!(
        f.sync.round().await,
        "a skipped segment is not a failed round"
    );
    assert!(text(&f.store, "p/live/show/src/audio/1.m4s")
        .await
        .is_none());
    assert!(text(&f.store, "p/live/show/src/audio/init-7.mp4")
        .await
        .is_some());
    assert_eq!(
        f.sync.shared.client.budget().used(),
        0,
        "nothing stays reserved"
    );
    // Not tried again: the playlist goes on without it.
    add_segment(&f.rendition, 2);
    assert!(f.sync.round().await);
    let feed = &f.sync.feeds[&FeedDir::LadderAudio];
    assert!(feed.skipped.contains(&1) && feed.skipped.contains(&2));
}

/// An in-memory store whose PUTs to keys containing `failing` land but answer an error,
/// as a PUT that timed out after the store took it.
#[derive(Debug, Default)]
struct Flaky {
    inner: InMemory,
    failing: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Flaky")
    }
}

mod flaky_impl {
    use futures_util::stream::BoxStream;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
    };

    use super::{Flaky, Path};

    #[async_trait::async_trait]
    impl ObjectStore for Flaky {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> Result<PutResult> {
            let failing = self.failing.lock().unwrap().clone();
            let put = self.inner.put_opts(location, payload, opts).await?;
            match failing {
                Some(f) if location.as_ref().contains(&f) => Err(object_store::Error::Generic {
                    store: "flaky",
                    source: "injected failure".into(),
                }),
                _ => Ok(put),
            }
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }
}

#[tokio::test]
async fn a_failed_playlist_holds_the_master_back_and_a_failed_segment_is_still_deleted() {
    let mut f = fixture(1 << 20);
    let flaky = Arc::new(Flaky::default());
    f.sync.shared = Arc::new(Shared {
        hub: f.sync.shared.hub.clone(),
        client: Client::with_store(flaky.clone(), &f.sync.shared.hub.config().object_store),
        prefix: "p".into(),
        delete: DeletePolicy::Window,
    });
    let text = |key: &'static str| {
        let flaky = flaky.clone();
        async move { text(&flaky.inner, key).await }
    };
    *flaky.failing.lock().unwrap() = Some("src/audio.m3u8".into());
    add_segment(&f.rendition, 1);
    assert!(!f.sync.round().await);
    assert!(text("p/live/show/src/audio/1.m4s").await.is_some());
    assert!(
        text("p/live/show/index.m3u8").await.is_none(),
        "no master while a playlist it names failed"
    );
    // The next round (no new segment) tries again and completes.
    *flaky.failing.lock().unwrap() = Some("src/audio/2.m4s".into());
    assert!(f.sync.round().await);
    assert!(text("p/live/show/index.m3u8").await.is_some());
    // Segment 2's PUT "fails" (yet lands): not tried again, but deleted once it leaves.
    add_segment(&f.rendition, 2);
    assert!(!f.sync.round().await);
    *flaky.failing.lock().unwrap() = None;
    for seq in 3..=4 {
        add_segment(&f.rendition, seq);
        assert!(f.sync.round().await);
    }
    let doomed: Vec<String> = f.sync.doomed.iter().map(|(_, k)| k.to_string()).collect();
    assert!(
        doomed.contains(&"p/live/show/src/audio/2.m4s".to_string()),
        "{doomed:?}"
    );
}
