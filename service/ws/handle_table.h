// HandleTable<T>: maps opaque 64-bit handle values to objects so that a stale, forged or deleted
// handle is an error instead of a crash. Values are never reused while live. Used by the C ABI
// (service/ws/capi, a counter) and by the ProtocolComponent gRPC service (rpc, CSPRNG ids).
//
// Object lifetime: the table owns each object from insert() until erase(); erase() waits for calls
// already inside the object (they hold its lock) and destroys it after they finish, outside every
// lock of the table.
// Thread safety: every member is safe from any thread. with() runs its function under the
// object's own mutex, so calls on one handle are serialised and calls on different handles are not.
// The admission and removal callbacks of insert() and erase_where() run under the table's lock, so
// a caller can keep counts that must agree with the table (quotas) without a lock of its own;
// they must not call back into the table.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wsgate::ws {

template <class T>
class HandleTable {
 public:
  // How new handle values are made: a counter (in-process C ABI) or a caller-supplied generator
  // such as a CSPRNG (ids that cross a trust boundary must be unguessable). A generator returns
  // 0 when it cannot make a value (a failing CSPRNG); 0 and live values are drawn again, up to
  // kMaxDraws times in a row, after which insert() fails.
  using IdGenerator = std::uint64_t (*)();
  static constexpr int kMaxDraws = 64;

  explicit HandleTable(IdGenerator generator = nullptr) : generator_(generator) {}

  // Stores `object`; returns its handle value (never 0), or 0 when the generator failed.
  std::uint64_t insert(std::unique_ptr<T> object) {
    return insert(std::move(object), [](std::size_t, const T&) { return true; });
  }

  // Stores `object` if admit(size(), object) returns true (called under the table's lock, so the
  // decision and the insertion are one step); returns its handle value, or 0 when refused or
  // the generator failed. A refused object is destroyed outside the lock.
  template <class Admit>
  std::uint64_t insert(std::unique_ptr<T> object, Admit&& admit) {
    auto entry = std::make_shared<Entry>();
    entry->object = std::move(object);
    std::lock_guard lock(mutex_);
    std::uint64_t id = 0;
    for (int draw = 0; draw < kMaxDraws && id == 0; ++draw) {
      id = generator_ ? generator_() : ++counter_;
      if (id != 0 && entries_.count(id) != 0) id = 0;
    }
    if (id == 0 || !std::forward<Admit>(admit)(entries_.size(), *entry->object)) {
      object = std::move(entry->object);  // the parameter is destroyed after the lock is released
      return 0;
    }
    entries_.emplace(id, std::move(entry));
    return id;
  }

  // Runs fn(T&) under the object's lock. Returns false (fn not run) for an unknown handle.
  template <class Fn>
  bool with(std::uint64_t id, Fn&& fn) {
    std::shared_ptr<Entry> entry = find(id);
    if (!entry) return false;
    std::lock_guard lock(entry->mutex);
    if (!entry->object) return false;  // erased while we waited
    std::forward<Fn>(fn)(*entry->object);
    return true;
  }

  // Removes and destroys the object. Returns false for an unknown handle.
  bool erase(std::uint64_t id) {
    return erase_where(id, [](const T&) { return true; }, [](const T&) {}) != 0;
  }

  // Removes the object `id` if doomed_if(const T&) says so; see erase_where below.
  template <class Pred, class Removed>
  std::size_t erase_where(std::uint64_t id, Pred&& doomed_if, Removed&& removed) {
    std::shared_ptr<Entry> doomed;
    {
      std::lock_guard lock(mutex_);
      auto it = entries_.find(id);
      if (it == entries_.end() || !doomed_if(static_cast<const T&>(*it->second->object))) {
        return 0;
      }
      removed(static_cast<const T&>(*it->second->object));
      doomed = std::move(it->second);
      entries_.erase(it);
    }
    destroy(*doomed);
    return 1;
  }

  // Removes every object doomed_if(const T&) picks; removed(const T&) runs for each as it leaves
  // the table. Both run under the table's lock and may read only what is immutable or atomic in
  // T (other threads may be inside the object). Then each object is destroyed as erase() does.
  // Returns how many were removed.
  template <class Pred, class Removed>
  std::size_t erase_where(Pred&& doomed_if, Removed&& removed) {
    std::vector<std::shared_ptr<Entry>> doomed;
    {
      std::lock_guard lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end();) {
        const T& object = *it->second->object;
        if (doomed_if(object)) {
          removed(object);
          doomed.push_back(std::move(it->second));
          it = entries_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const std::shared_ptr<Entry>& entry : doomed) destroy(*entry);
    return doomed.size();
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::mutex mutex;
    std::unique_ptr<T> object;  // nullptr once erased
  };

  // Waits for the calls inside the object, then destroys it outside every lock.
  static void destroy(Entry& entry) {
    std::unique_ptr<T> object;
    {
      std::lock_guard lock(entry.mutex);
      object = std::move(entry.object);
    }
  }

  std::shared_ptr<Entry> find(std::uint64_t id) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : it->second;
  }

  IdGenerator generator_;
  mutable std::mutex mutex_;
  std::uint64_t counter_ = 0;
  std::unordered_map<std::uint64_t, std::shared_ptr<Entry>> entries_;
};

}  // namespace wsgate::ws
