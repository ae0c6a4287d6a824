package example;

import java.math.BigDecimal;
import java.util.List;

public class Receipt {
    private final String orderId;
    private final int units;
    private final BigDecimal total;
    private final List<String> skus;
    private final Order.Status status;
    public final boolean gift;
    public String note;

    public Receipt(String orderId, int units, BigDecimal total, List<String> skus, Order.Status status, boolean gift) {
        this.orderId = orderId;
        this.units = units;
        this.total = total;
        this.skus = skus;
        this.status = status;
        this.gift = gift;
    }

    public String getOrderId() {
        return orderId;
    }

    public int getUnits() {
        return units;
    }

    public BigDecimal getTotal() {
        return total;
    }

    public List<String> getSkus() {
        return skus;
    }

    public Order.Status getStatus() {
        return status;
    }

    /** JavaBeans naming keeps an all-caps name: "URL". */
    public String getURL() {
        return "https://example.com/orders/" + orderId;
    }
}
