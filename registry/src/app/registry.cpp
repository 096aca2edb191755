#include "pylon/registry/registry.h"

#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "api/auth.h"
#include "api/context.h"
#include "api/director_watch.h"
#include "pylon/catalog/catalog.h"
#include "pylon/catalog/change_listener.h"
#include "pylon/catalog/connection_pool.h"
#include "pylon/catalog/migrations.h"
#include "pylon/common/file_io.h"
#include "pylon/common/log.h"
#include "pylon/registry/blob/blob_store.h"
#include "pylon/registry/metrics.h"
#include "pylon/registry/tuf/tuf_host.h"
#include "pylon/signing/tuf/updater.h"
#include "tuf/tuf_host_impl.h"

namespace pylon::registry {

namespace openapi_data {
extern const char* const kOpenApiYaml;
}

struct Registry::Impl {
    RegistryConfig config;
    std::shared_ptr<catalog::ConnectionPool> pool;
    std::unique_ptr<catalog::Catalog> catalog;
    std::unique_ptr<blob::BlobStore> blobs;
    std::unique_ptr<tuf::TufHost> tuf;
    std::optional<signing::PrivateKey> director_key;
    std::vector<std::pair<std::string, std::string>> routes;  // (method, pattern), for docs
    Metrics metrics;
    api::DirectorWatch director_watch;  // long polls of director documents
    std::unique_ptr<catalog::ChangeListener> changes;
    std::unique_ptr<api::ApiContext> ctx;
    std::unique_ptr<http::Server> server;
    bool signals = false;

    std::thread maintenance;
    std::thread orchestrator;  // advances rollouts every rollout_interval
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false;

    Result<void> open_storage();
    Result<void> bootstrap_admin_token();
    void maintenance_loop();
    void orchestrator_loop();
};

namespace {

// The director's online key: made on first start (0600, beside the snapshot and timestamp
// keys), published to devices at enrolment. A new key is written under a temporary name and
// linked into place, so replicas starting together end up with the same one.
Result<signing::PrivateKey> load_or_create_director_key(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
        PYLON_TRY_ASSIGN(auto key, signing::PrivateKey::generate(signing::KeyType::ed25519));
        const auto tmp = file.string() + ".new." + std::to_string(::getpid());
        PYLON_TRY(key.save(tmp, nullptr));
        const int rc = ::link(tmp.c_str(), file.c_str());
        const int err = errno;
        ::unlink(tmp.c_str());
        if (rc != 0 && err != EEXIST) return Error::from_errno(err, "link " + file.string());
        PYLON_TRY(fsync_directory(file.parent_path()));
        if (rc == 0) log::info("created the director key {} ({})", file.string(), key.key_id());
    }
    return tuf::detail::load_owner_only_key(file);
}

}  // namespace

Result<void> Registry::Impl::open_storage() {
    const std::size_t workers =
        config.server.worker_threads != 0
            ? config.server.worker_threads
            : 2 * std::max(1u, config.server.io_threads != 0 ? config.server.io_threads
                                                             : std::thread::hardware_concurrency());
    PYLON_TRY_ASSIGN(
        pool, catalog::ConnectionPool::create(
                  config.database_url, config.db_pool_size != 0 ? config.db_pool_size : workers));
    {
        auto applied = catalog::apply_migrations(*pool);
        if (!applied) return std::move(applied).error().with_context("applying migrations");
        for (int v : *applied) log::info("applied migration {}", v);
    }
    PYLON_TRY_ASSIGN(catalog, catalog::make_postgres_catalog(pool));

    blob::BlobStoreConfig blob_config;
    blob_config.max_blob_size = config.max_blob_size;
    blob_config.session_max_idle = config.upload_session_idle;
    {
        auto store = blob::BlobStore::open_filesystem(config.data_dir / "blobs", blob_config);
        if (!store) return std::move(store).error().with_context("opening the blob store");
        blobs = std::move(store).value();
    }
    tuf::TufHostOptions tuf_options;
    tuf_options.root_file = config.tuf_root_file;
    tuf_options.targets_file = config.tuf_targets_file;
    tuf_options.snapshot_key_file = config.tuf_snapshot_key_file;
    tuf_options.timestamp_key_file = config.tuf_timestamp_key_file;
    {
        auto host = tuf::TufHost::open(config.data_dir / "tuf", tuf_options);
        if (!host) return std::move(host).error().with_context("opening the TUF repository");
        tuf = std::move(host).value();
    }
    {
        auto key = load_or_create_director_key(config.data_dir / "tuf" / "keys" / "director.key");
        if (!key) return std::move(key).error().with_context("the director key");
        director_key = std::move(*key);
    }
    return {};
}

Result<void> Registry::Impl::bootstrap_admin_token() {
    PYLON_TRY_ASSIGN(std::int64_t count, catalog->count_tokens());
    if (count != 0) return {};
    const std::string token = api::generate_token();
    const auto path = config.data_dir / "admin.token";
    // Written before the token exists in the database: a crash in between leaves a file with a
    // useless token and an empty token table, and the next start makes a new one.
    PYLON_TRY(write_file_atomic(path, token + "\n", 0600));
    PYLON_TRY(catalog->create_token("bootstrap-admin", api::hash_token(token), {"admin"},
                                    std::nullopt, "registry bootstrap"));
    log::warn(
        "created the bootstrap admin token in {} (mode 0600): use it to create other "
        "tokens, then revoke it",
        path.string());
    return {};
}

void Registry::Impl::maintenance_loop() {
    std::unique_lock lock(mutex);
    while (!stopping) {
        wake.wait_for(lock, config.maintenance_interval, [this] { return stopping; });
        if (stopping) break;
        lock.unlock();
        if (auto n = blobs->expire(config.upload_session_idle); !n) {
            log::error("expiring upload sessions: {}", n.error().to_string());
        } else if (*n > 0) {
            log::info("removed {} idle upload sessions", *n);
        }
        // Under the publish lock: replicas sharing DATA/tuf take turns with publishes and with
        // each other (the second finds the timestamp fresh and does nothing).
        bool refreshed = false;
        auto r = catalog->with_tuf_lock([&]() -> Result<void> {
            PYLON_TRY_ASSIGN(refreshed, tuf->refresh_if_expiring(signing::tuf::libc_now()));
            return {};
        });
        if (!r) {
            log::error("refreshing TUF timestamp: {}", r.error().to_string());
        } else if (refreshed) {
            log::info("re-signed the TUF timestamp");
        }
        lock.lock();
    }
}

void Registry::Impl::orchestrator_loop() {
    std::unique_lock lock(mutex);
    while (!stopping) {
        wake.wait_for(lock, config.rollout_interval, [this] { return stopping; });
        if (stopping) break;
        lock.unlock();
        if (auto n = catalog->advance_rollouts(); !n) {
            log::error("advancing rollouts: {}", n.error().to_string());
        }
        lock.lock();
    }
}

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Registry::~Registry() {
    stop();
}

Result<std::unique_ptr<Registry>> Registry::create(RegistryConfig config) {
    if (config.data_dir.empty()) {
        return Error(pylon::Errc::invalid_argument, "the registry needs a data directory");
    }
    auto impl = std::make_unique<Impl>();
    impl->config = std::move(config);
    return std::unique_ptr<Registry>(new Registry(std::move(impl)));
}

Result<void> Registry::start() {
    Impl& d = *impl_;
    std::error_code ec;
    std::filesystem::create_directories(d.config.data_dir, ec);
    if (ec) {
        return Error(pylon::Errc::io_error,
                     "creating data directory " + d.config.data_dir.string() + ": " + ec.message());
    }
    PYLON_TRY(d.open_storage());
    d.ctx.reset(new api::ApiContext{
        *d.catalog, *d.blobs, *d.tuf, d.metrics, openapi_data::kOpenApiYaml, {}});
    d.ctx->director_key = &*d.director_key;
    d.ctx->director_watch = &d.director_watch;
    {
        catalog::ChangeListener::Handlers on_change;
        on_change.device_changed = [&d](std::int64_t device) { d.director_watch.notify(device); };
        on_change.resync = [&d] { d.director_watch.notify_all(); };
        auto listener = catalog::ChangeListener::start(d.config.database_url, std::move(on_change));
        if (!listener) {
            return std::move(listener).error().with_context("listening for catalog changes");
        }
        d.changes = std::move(*listener);
    }
    if (auto synced = api::sync_all_publisher_keys(*d.ctx); !synced) {
        return std::move(synced).error().with_context("mirroring publisher keys into the catalog");
    }
    if (auto boot = d.bootstrap_admin_token(); !boot) {
        return std::move(boot).error().with_context("creating the bootstrap admin token");
    }

    auto router = std::make_shared<http::Router>();
    api::add_ops_routes(*router, *d.ctx);
    api::add_token_routes(*router, *d.ctx);
    api::add_namespace_routes(*router, *d.ctx);
    api::add_model_routes(*router, *d.ctx);
    api::add_release_routes(*router, *d.ctx);
    api::add_blob_routes(*router, *d.ctx);
    api::add_tuf_routes(*router, *d.ctx);
    api::add_device_routes(*router, *d.ctx);
    api::add_rollout_routes(*router, *d.ctx);
    api::add_director_routes(*router, *d.ctx);

    d.routes = router->routes();
    http::Hooks hooks;
    hooks.metrics = &d.metrics;
    hooks.on_stop = [&d] { d.director_watch.shutdown(); };
    hooks.error_response = [](const Error& e) { return api::error_response(e); };
    PYLON_TRY_ASSIGN(d.server, http::Server::create(d.config.server, router, std::move(hooks)));
    if (d.signals) d.server->install_signal_handlers();
    PYLON_TRY(d.server->start());
    d.maintenance = std::thread([&d] { d.maintenance_loop(); });
    d.orchestrator = std::thread([&d] { d.orchestrator_loop(); });
    log::info("registry listening on {}:{} (data in {})", d.config.server.host, port(),
              d.config.data_dir.string());
    return {};
}

std::vector<std::pair<std::string, std::string>> Registry::routes() const {
    return impl_->routes;
}

std::uint16_t Registry::port() const {
    return impl_->server ? impl_->server->port() : 0;
}

void Registry::install_signal_handlers() {
    impl_->signals = true;
}

void Registry::wait() {
    if (impl_->server) impl_->server->wait();
}

void Registry::stop() {
    Impl& d = *impl_;
    {
        std::lock_guard lock(d.mutex);
        d.stopping = true;
    }
    d.wake.notify_all();
    if (d.server) d.server->stop();
    if (d.maintenance.joinable()) d.maintenance.join();
    if (d.orchestrator.joinable()) d.orchestrator.join();
}

}  // namespace pylon::registry
