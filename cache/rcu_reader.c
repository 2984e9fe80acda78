/* RCU reader registration (rcu_reader.h). */
#include "rcu_reader.h"

#include <urcu/urcu-memb.h>

static _Thread_local bool rcu_reader_is_registered;

void certval_rcu_reader_register(void)
{
    if (!rcu_reader_is_registered) {
        urcu_memb_register_thread();
        rcu_reader_is_registered = true;
    }
}

bool certval_rcu_reader_registered(void)
{
    return rcu_reader_is_registered;
}

void certval_rcu_reader_unregister(void)
{
    if (rcu_reader_is_registered) {
        urcu_memb_unregister_thread();
        rcu_reader_is_registered = false;
    }
}

bool certval_rcu_writer_begin(void)
{
    if (rcu_reader_is_registered)
        return false;
    certval_rcu_reader_register();
    return true;
}

void certval_rcu_writer_end(bool registered_here)
{
    if (registered_here)
        certval_rcu_reader_unregister();
}
