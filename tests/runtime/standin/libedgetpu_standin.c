/* A stand-in for libedgetpu, built by the tests (never shipped, never a delegate).
 *
 * It answers the two questions edgekit asks through libedgetpu's C API (edgetpu_c.h) before loading
 * the delegate: which Edge TPUs are there (edgetpu_list_devices) and which runtime version this is
 * (edgetpu_version). Its delegate factory returns NULL, which is how the real library answers when
 * the device is held by another process.
 * Build: cc -shared -fPIC -DRUNTIME_VERSION=13 -DDEVICE_COUNT=1 -o libedgetpu.so.1 libedgetpu_standin.c
 */
#include <stddef.h>

#ifndef RUNTIME_VERSION
#define RUNTIME_VERSION 14
#endif
#ifndef DEVICE_COUNT
#define DEVICE_COUNT 1
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

struct edgetpu_device {
  int type; /* 0 = PCI, 1 = USB, as in edgetpu_c.h */
  const char *path;
};

static struct edgetpu_device devices[] = {
    {1, "/sys/bus/usb/devices/2-1"},
    {1, "/sys/bus/usb/devices/2-2"},
};

const char *edgetpu_version(void) {
  return "BuildLabel(stand-in), RuntimeVersion(" STR(RUNTIME_VERSION) ")";
}

struct edgetpu_device *edgetpu_list_devices(size_t *num_devices) {
  *num_devices = DEVICE_COUNT;
  return DEVICE_COUNT ? devices : NULL;
}

void edgetpu_free_devices(struct edgetpu_device *dev) { (void)dev; }

void *tflite_plugin_create_delegate(char **keys, char **values, size_t count, void (*report)(const char *)) {
  (void)keys; (void)values; (void)count; (void)report;
  return NULL;
}

void tflite_plugin_destroy_delegate(void *delegate) { (void)delegate; }
