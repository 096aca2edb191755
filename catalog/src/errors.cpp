#include "pylon/catalog/errors.h"

#include <string>

namespace pylon::catalog {
namespace {

class CatalogCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "catalog"; }
    std::string message(int value) const override {
        switch (static_cast<Errc>(value)) {
            case Errc::ok:
                return "ok";
            case Errc::not_found:
                return "not found";
            case Errc::conflict:
                return "conflict";
            case Errc::invalid_state:
                return "invalid state";
            case Errc::database:
                return "database error";
            case Errc::invalid_argument:
                return "invalid argument";
            case Errc::license_refused:
                return "refused by the licence";
        }
        return "unknown catalog error";
    }
};

}  // namespace

const std::error_category& catalog_category() noexcept {
    static const CatalogCategory category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), catalog_category()};
}

}  // namespace pylon::catalog
