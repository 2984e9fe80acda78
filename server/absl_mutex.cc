// Turns off abseil's mutex deadlock detection before main() runs.
//
// gRPC's locks are absl::Mutex. Debian's abseil is built with deadlock
// detection on: every Lock() then walks a lock graph and records a stack
// trace (PLATFORM.md: about 20% of the calls/s). certval's own locks are
// pthread and liburcu, and gRPC's lock order is tested upstream, so the
// check only costs time here. Linked into certvald and certval-load.
// CERTVAL_ABSL_DEADLOCK_DETECTION=1 in the environment keeps abseil's
// default, to measure the difference side by side.
#include <cstdlib>
#include <cstring>

#include <absl/synchronization/mutex.h>

namespace
{

struct DeadlockDetectionOff {
    DeadlockDetectionOff()
    {
        const char *keep = std::getenv("CERTVAL_ABSL_DEADLOCK_DETECTION");

        if (keep == nullptr || std::strcmp(keep, "1") != 0)
            absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    }
};

const DeadlockDetectionOff deadlock_detection_off;

} // namespace
