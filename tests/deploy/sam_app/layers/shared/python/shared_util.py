def describe_order(order_id):
    return f"order {order_id} accepted"
