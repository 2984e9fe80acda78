/* container_of: the structure that holds |p| as its member |member|. Used
 * by completion tags (call.h), which are members of the calls they belong
 * to. |p| must point into a live |type|.
 *
 * Conventions: a macro; nothing fails. */
#ifndef CERTVAL_CONTAINER_OF_H
#define CERTVAL_CONTAINER_OF_H

#include <stddef.h>

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

#endif
