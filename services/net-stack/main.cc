// net-stack: its own executable (the bulkhead binary runs the same code as
// `bulkhead --service net-stack`; see services/common/mains.h).
#include "services/common/mains.h"

int main(int argc, char** argv) { return bulkhead::service::NetStackMain(argc, argv); }
