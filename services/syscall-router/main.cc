// syscall-router: its own executable (the bulkhead binary runs the same code as
// `bulkhead --service syscall-router`; see services/common/mains.h).
#include "services/common/mains.h"

int main(int argc, char** argv) { return bulkhead::service::SyscallRouterMain(argc, argv); }
