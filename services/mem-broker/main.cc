// mem-broker: its own executable (the bulkhead binary runs the same code as
// `bulkhead --service mem-broker`; see services/common/mains.h).
#include "services/common/mains.h"

int main(int argc, char** argv) { return bulkhead::service::MemBrokerMain(argc, argv); }
