// Umbrella header of the wsgate client SDK (see client-sdk/README.md).
#ifndef WSGATE_CLIENT_H_
#define WSGATE_CLIENT_H_
#include "wsgate/client/client.h"
#include "wsgate/client/error.h"
#include "wsgate/client/protocol_client.h"
#include "wsgate/client/session.h"
#endif  // WSGATE_CLIENT_H_
