// ChangeListener: the catalog's change notifications, so that every registry replica sharing
// the database learns when a device's director document may have changed.
//
// The catalog sends `NOTIFY pylon_director, '<device id>'` in the same transaction as every
// change of a device's desired release (assignments, rollouts, rollbacks) and revocations;
// PostgreSQL delivers it on commit. The listener holds one connection of its own (LISTEN) on a
// thread; when that connection breaks it reconnects (1 s apart, logged) and calls `resync`,
// since notifications sent meanwhile are lost.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "pylon/common/result.h"

namespace pylon::catalog {

inline constexpr const char* kDirectorChannel = "pylon_director";

class ChangeListener {
public:
    struct Handlers {
        std::function<void(std::int64_t device)> device_changed;
        std::function<void()> resync;  // anything may have changed
    };
    // Connects (Errc::database when the first connection fails) and starts listening.
    [[nodiscard]] static Result<std::unique_ptr<ChangeListener>> start(std::string conninfo,
                                                                       Handlers handlers);
    ~ChangeListener();  // stops and joins the thread
    ChangeListener(const ChangeListener&) = delete;
    ChangeListener& operator=(const ChangeListener&) = delete;

    struct Impl;

private:
    explicit ChangeListener(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pylon::catalog
