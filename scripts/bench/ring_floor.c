/* The recorder benchmark's floor: the cheapest AF_PACKET capture of an interface.
 *
 * A TPACKET_V3 ring like l7rec's (64 blocks of 1 MiB, 50 ms retire timeout), outgoing
 * copies ignored, no filter, and a consumer that only reads every cache line of every
 * packet and hands the block back: no parsing, no compression, no file. What a capture
 * costs beyond this is its own work.
 *
 *   ring_floor IFACE      prints "listening on IFACE" when ready; stops on SIGINT/SIGTERM
 *                         and prints the packets read and the kernel's drop count. */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define BLOCK_SIZE (1u << 20)
#define BLOCKS 64u

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

int main(int argc, char **argv)
{
	struct tpacket_req3 req = {
		.tp_block_size = BLOCK_SIZE,
		.tp_block_nr = BLOCKS,
		.tp_frame_size = 2048,
		.tp_frame_nr = BLOCK_SIZE / 2048 * BLOCKS,
		.tp_retire_blk_tov = 50,
	};
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct tpacket_stats_v3 st;
	socklen_t st_len = sizeof(st);
	unsigned long long packets = 0, drops = 0;
	unsigned cur = 0, sum = 0;
	int fd, one = 1, version = TPACKET_V3;
	char *ring;

	if (argc != 2) {
		fprintf(stderr, "usage: %s IFACE\n", argv[0]);
		return 2;
	}
	sll.sll_ifindex = if_nametoindex(argv[1]);
	if (!sll.sll_ifindex)
		die(argv[1]);
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)))
		die("setsockopt");
	ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCKS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED)
		die("mmap");
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		die("bind");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "listening on %s\n", argv[1]);

	while (!stop) {
		struct tpacket_block_desc *b = (void *)(ring + (size_t)cur * BLOCK_SIZE);
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (!(b->hdr.bh1.block_status & TP_STATUS_USER)) {
			poll(&p, 1, 100);
			continue;
		}
		struct tpacket3_hdr *h = (void *)((char *)b + b->hdr.bh1.offset_to_first_pkt);
		for (unsigned i = 0; i < b->hdr.bh1.num_pkts; i++) {
			const unsigned char *d = (const unsigned char *)h + h->tp_mac;

			for (unsigned j = 0; j < h->tp_snaplen; j += 64)
				sum += d[j];
			packets++;
			h = (void *)((char *)h + h->tp_next_offset);
		}
		__atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		cur = (cur + 1) % BLOCKS;
	}
	if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &st_len) == 0)
		drops = st.tp_drops;
	fprintf(stderr, "%llu packets read, %llu dropped by kernel (checksum %u)\n", packets, drops,
		sum);
	return 0;
}
