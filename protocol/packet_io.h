/* SPDX-License-Identifier: MIT */
/*
 * Sending one packet of the protocol on a SOCK_SEQPACKET socket, with
 * descriptors attached (SCM_RIGHTS, PROTOCOL.md section 1): the one
 * sendmsg() both dirtyd (GET_FDS, ADOPT) and libdirty (READOPT) use.
 *
 * Owns: how a packet and its descriptors go out in one message.
 */
#ifndef DIRTYD_PROTOCOL_PACKET_IO_H
#define DIRTYD_PROTOCOL_PACKET_IO_H

#include <stddef.h>

/* SCM_MAX_FD: the most descriptors one message may carry. */
#define PROTO_MAX_FDS 253u

/**
 * proto_send_fds() - send @len bytes of @buf as one packet on @sock with
 * @nfds descriptors (none when 0), never raising SIGPIPE; @flags are
 * sendmsg()'s (MSG_DONTWAIT for a caller that must not block).
 * Returns 0; -EINVAL above PROTO_MAX_FDS; -EAGAIN when a non-blocking
 * socket is full; -EMSGSIZE when the packet went out short; another
 * -errno of sendmsg().
 */
int proto_send_fds(int sock, const void *buf, size_t len, const int *fds,
		   unsigned int nfds, int flags);

#endif /* DIRTYD_PROTOCOL_PACKET_IO_H */
