#include "pylon/registry/http/router.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <stdexcept>

namespace pylon::registry::http {

namespace {

// Lower ranks are more specific.
enum class Kind { literal = 0, param = 1, rest = 2 };

struct Segment {
    Kind kind;
    std::string text;  // the literal, or the parameter's name
};

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    if (path.empty() || path.front() != '/') return out;
    path.remove_prefix(1);
    while (true) {
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

std::vector<Segment> parse_pattern(std::string_view pattern) {
    if (pattern.empty() || pattern.front() != '/') {
        throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
    }
    std::vector<Segment> segments;
    const auto parts = split_path(pattern);
    if (parts.size() == 1 && parts[0].empty()) return segments;  // "/"
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto part = parts[i];
        if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
            auto name = part.substr(1, part.size() - 2);
            Kind kind = Kind::param;
            if (name.ends_with("...")) {
                name.remove_suffix(3);
                kind = Kind::rest;
                if (i + 1 != parts.size()) {
                    throw std::invalid_argument("{name...} must be the last segment: " +
                                                std::string(pattern));
                }
            }
            if (name.empty() || name.find_first_of("{}/") != std::string_view::npos) {
                throw std::invalid_argument("bad parameter in route: " + std::string(pattern));
            }
            segments.push_back({kind, std::string(name)});
        } else {
            if (part.find_first_of("{}") != std::string_view::npos) {
                throw std::invalid_argument("bad segment in route: " + std::string(pattern));
            }
            segments.push_back({Kind::literal, std::string(part)});
        }
    }
    return segments;
}

}  // namespace

struct Router::Entry {
    Route route;
    std::vector<Segment> segments;

    // Fills `params` and `rank` when the pattern matches `parts`.
    bool match(const std::vector<std::string_view>& parts, Params& params,
               std::vector<Kind>& rank) const {
        params.clear();
        rank.clear();
        const bool root = parts.size() == 1 && parts[0].empty();
        if (segments.empty()) return root;
        if (root) return false;
        for (std::size_t i = 0; i < segments.size(); ++i) {
            const auto& seg = segments[i];
            rank.push_back(seg.kind);
            if (seg.kind == Kind::rest) {
                if (i >= parts.size()) return false;
                std::string rest;
                for (std::size_t j = i; j < parts.size(); ++j) {
                    if (parts[j].empty()) return false;  // "{name...}" takes non-empty segments
                    if (j > i) rest += '/';
                    rest.append(parts[j]);
                }
                params.emplace_back(seg.text, std::move(rest));
                return true;
            }
            if (i >= parts.size()) return false;
            if (seg.kind == Kind::literal) {
                if (parts[i] != seg.text) return false;
            } else {
                if (parts[i].empty()) return false;
                params.emplace_back(seg.text, std::string(parts[i]));
            }
        }
        return parts.size() == segments.size();
    }
};

Router::Router() = default;
Router::~Router() = default;

Router& Router::add(std::string method, std::string_view pattern, Handler handler,
                    RouteOptions options) {
    if (!handler) throw std::invalid_argument("route without a handler: " + std::string(pattern));
    Route route{
        std::move(method), std::string(pattern), options, std::move(handler), {}, {}, {}, {}};
    return insert(std::move(route));
}

Router& Router::add_fast(std::string method, std::string_view pattern, FastHandler fast,
                         Handler handler, RouteOptions options) {
    if (!handler || !fast) {
        throw std::invalid_argument("fast route without both handlers: " + std::string(pattern));
    }
    Route route{std::move(method),
                std::string(pattern),
                options,
                std::move(handler),
                std::move(fast),
                {},
                {},
                {}};
    return insert(std::move(route));
}

Router& Router::add_streamed(std::string method, std::string_view pattern, StreamBegin begin,
                             StreamFinish finish, RouteOptions options) {
    if (!begin || !finish) {
        throw std::invalid_argument("streamed route without begin/finish: " + std::string(pattern));
    }
    Route route{std::move(method), std::string(pattern), options, {}, {},
                std::move(begin),  std::move(finish),    {}};
    return insert(std::move(route));
}

Router& Router::add_deferred(std::string method, std::string_view pattern, DeferredHandler handler,
                             RouteOptions options) {
    if (!handler) throw std::invalid_argument("route without a handler: " + std::string(pattern));
    Route route{std::move(method), std::string(pattern), options, {}, {}, {}, {},
                std::move(handler)};
    return insert(std::move(route));
}

struct Responder::State {
    explicit State(std::shared_ptr<Target> t) : target(std::move(t)) {}
    ~State() {
        if (!sent.exchange(true)) {
            target->deliver(Response::error(500, "internal", "internal server error"));
        }
    }
    std::shared_ptr<Target> target;
    std::atomic<bool> sent{false};
};

Responder::Responder(std::shared_ptr<Target> target)
    : state_(std::make_shared<State>(std::move(target))) {}

void Responder::send(Response response) const {
    if (!state_->sent.exchange(true)) state_->target->deliver(std::move(response));
}

void Responder::send_from_worker(std::function<Response()> work) const {
    if (state_->sent.exchange(true)) return;
    state_->target->run_on_worker(std::move(work));
}

bool Responder::sent() const {
    return state_->sent.load();
}

Router& Router::insert(Route route) {
    if (route.method.empty()) throw std::invalid_argument("route without a method");
    auto entry = std::make_unique<Entry>();
    entry->segments = parse_pattern(route.pattern);
    for (const auto& e : entries_) {
        if (e->route.method == route.method && e->route.pattern == route.pattern) {
            throw std::invalid_argument("duplicate route: " + route.method + " " + route.pattern);
        }
    }
    entry->route = std::move(route);
    entries_.push_back(std::move(entry));
    return *this;
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.emplace_back(e->route.method, e->route.pattern);
    return out;
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
    RouteMatch result;
    const auto parts = split_path(path);
    if (parts.empty()) return result;

    // The most specific pattern for this method; HEAD falls back to GET only when no HEAD
    // route matches at all.
    auto best_for = [&](std::string_view m, std::set<std::string>* allowed) {
        const Entry* best = nullptr;
        std::vector<Kind> best_rank;
        Params best_params;
        Params params;
        std::vector<Kind> rank;
        for (const auto& e : entries_) {
            if (!e->match(parts, params, rank)) continue;
            if (allowed) allowed->insert(e->route.method);
            if (e->route.method != m) continue;
            if (!best || rank < best_rank) {
                best = e.get();
                best_rank = rank;
                best_params = params;
            }
        }
        return std::make_pair(best, std::move(best_params));
    };

    std::set<std::string> allowed;
    auto [best, params] = best_for(method, &allowed);
    if (!best && method == "HEAD") std::tie(best, params) = best_for("GET", nullptr);
    if (best) {
        result.status = RouteMatch::Status::found;
        result.route = &best->route;
        result.params = std::move(params);
        return result;
    }
    if (allowed.empty()) return result;
    if (allowed.contains("GET")) allowed.insert("HEAD");
    result.status = RouteMatch::Status::method_not_allowed;
    for (const auto& m : allowed) {
        if (!result.allow.empty()) result.allow += ", ";
        result.allow += m;
    }
    return result;
}

}  // namespace pylon::registry::http
