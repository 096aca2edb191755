#include "pylon/catalog/change_listener.h"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <pqxx/notification>
#include <pqxx/pqxx>
#include <thread>

#include "pool_impl.h"
#include "pylon/common/log.h"

namespace pylon::catalog {

namespace {

class Receiver final : public pqxx::notification_receiver {
public:
    Receiver(pqxx::connection_base& c, const ChangeListener::Handlers& h)
        : pqxx::notification_receiver(c, kDirectorChannel), handlers_(h) {}
    void operator()(const std::string& payload, int) override {
        std::int64_t id = 0;
        const auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), id);
        if (ec == std::errc() && end == payload.data() + payload.size()) {
            handlers_.device_changed(id);
        } else {
            handlers_.resync();
        }
    }

private:
    const ChangeListener::Handlers& handlers_;
};

}  // namespace

struct ChangeListener::Impl {
    std::string conninfo;
    Handlers handlers;
    std::unique_ptr<pqxx::connection> first;  // the connection start() opened
    std::atomic<bool> stopping{false};
    std::mutex mutex;
    std::condition_variable wake;
    std::thread thread;

    void run() {
        bool reconnected = false;
        auto conn = std::move(first);
        while (!stopping) {
            try {
                if (!conn) {
                    auto opened = ConnectionPool::Impl::open(conninfo);
                    if (!opened) throw std::runtime_error(opened.error().message());
                    conn = std::move(*opened);
                }
                Receiver receiver(*conn, handlers);
                if (reconnected) {
                    log::info("catalog: listening for changes again");
                    handlers.resync();
                }
                while (!stopping) conn->await_notification(0, 200'000);
            } catch (const std::exception& e) {
                if (stopping) break;
                log::warn("catalog: change notifications interrupted ({}); reconnecting", e.what());
                conn.reset();
                reconnected = true;
                std::unique_lock lock(mutex);
                wake.wait_for(lock, std::chrono::seconds(1), [this] { return stopping.load(); });
            }
        }
    }
};

ChangeListener::ChangeListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ChangeListener::~ChangeListener() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wake.notify_all();
    if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<ChangeListener>> ChangeListener::start(std::string conninfo,
                                                              Handlers handlers) {
    auto impl = std::make_unique<Impl>();
    impl->conninfo = std::move(conninfo);
    impl->handlers = std::move(handlers);
    PYLON_TRY_ASSIGN(impl->first, ConnectionPool::Impl::open(impl->conninfo));
    Impl* raw = impl.get();
    impl->thread = std::thread([raw] { raw->run(); });
    return std::unique_ptr<ChangeListener>(new ChangeListener(std::move(impl)));
}

}  // namespace pylon::catalog
