package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// listStaff lists the administrator's city's staff (GET /v1/admin/staff).
func (s *Server) listStaff(c *fiber.Ctx) error {
	ctx := c.UserContext()
	us, err := s.db.ListStaff(ctx, caller(c).JurisdictionID)
	if err != nil {
		return err
	}
	out := []Staff{}
	for i := range us {
		st, err := s.toStaff(ctx, &us[i])
		if err != nil {
			return err
		}
		out = append(out, *st)
	}
	return c.JSON(out)
}

// createStaff adds a member of staff (POST /v1/admin/staff).
func (s *Server) createStaff(c *fiber.Ctx) error {
	var req StaffRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	u, err := s.db.CreateStaff(c.UserContext(), caller(c).JurisdictionID, staffInput(req), s.now())
	if err != nil {
		return err
	}
	st, err := s.toStaff(c.UserContext(), u)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(st)
}

// updateStaff changes a member of staff (PATCH /v1/admin/staff/{id}); "disabled": true
// ends their access at once.
func (s *Server) updateStaff(c *fiber.Ctx) error {
	var req StaffRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	u, err := s.db.UpdateStaff(c.UserContext(), caller(c).JurisdictionID, c.Params("id"), staffInput(req), s.now())
	if err != nil {
		return err
	}
	st, err := s.toStaff(c.UserContext(), u)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func staffInput(r StaffRequest) models.StaffInput {
	in := models.StaffInput{Email: r.Email, Name: r.Name, DepartmentID: r.Department, Password: r.Password, Disabled: r.Disabled}
	if r.Role != nil {
		role := models.Role(*r.Role)
		in.Role = &role
	}
	return in
}

func (s *Server) toStaff(ctx context.Context, u *models.User) (*Staff, error) {
	st := &Staff{ID: u.ID, Name: u.Name, Role: string(u.Role), Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC()}
	if u.Email != nil {
		st.Email = *u.Email
	}
	if u.DepartmentID != nil {
		d, err := s.db.Department(ctx, *u.DepartmentID)
		if err != nil {
			return nil, err
		}
		st.Department = &d.Code
	}
	return st, nil
}
